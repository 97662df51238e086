//! Injection attempts: the request strings of each event (its `resource` and the attribute
//! values of `query`, `body`, `path`, `url`, `user_agent`, `payload`, `params` and a few
//! more; every attribute of an `sql_injection_attempt`) are percent-decoded once (`+` read as
//! a space), lowercased and matched against one pre-compiled [`RegexSet`] of weighted
//! patterns in four families: SQL injection, XSS, path traversal and command injection.
//!
//! **Score.** A family's score is the sum of the weights of its patterns that matched (each
//! counted once per event, whichever string it matched in), capped at 10; the event's score is
//! its best family's, and that family is the `kind` label. A pattern of weight 5 or more is
//! conclusive alone (`union select`, `<script`, `../../`, `/bin/sh`); weaker ones (`select …
//! from`, a single `../`, `; cat`, `<a href=`) only count together, since normal text has
//! them. An event scoring at least `threshold` (5 by default) is one detection: an injection
//! attempt is itself the incident. Events the application itself reported as
//! `sql_injection_attempt` are detections whatever their score (label `reported="true"`).
//!
//! **Cost.** Strings are decoded into one reused buffer (at most [`MAX_SCAN_BYTES`] of each
//! value) and tested with the set's `is_match` first, so a clean string costs one pass of a
//! lazy DFA; only strings that match something are asked which patterns did. The patterns
//! run in ASCII mode (`(?-u)`) so that word boundaries stay in the DFA, whose cache may grow to
//! 8 MiB: with regex's default of 2 MiB this set thrashes it and runs five times slower.

use pharos_proto::ingest::v1::SecurityEvent;
use regex::bytes::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use super::{
    Detection, EventSample, Evidence, Incident, SQL_INJECTION_ATTEMPT, rfc3339, service_name,
    truncate,
};

/// The most bytes of one string that are scanned; longer values are scanned up to there.
pub const MAX_SCAN_BYTES: usize = 16 * 1024;
/// The highest score.
pub const MAX_SCORE: f64 = 10.0;
/// The attributes scanned (besides `resource`), unless the event is an
/// `sql_injection_attempt`, whose attributes are all scanned.
pub const SCANNED_ATTRIBUTES: [&str; 11] = [
    "query",
    "query_string",
    "body",
    "request_body",
    "path",
    "url",
    "uri",
    "referer",
    "user_agent",
    "payload",
    "params",
];

/// Thresholds of the injection detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectionSettings {
    pub enabled: bool,
    /// The score (0 to 10) from which an event is an injection attempt.
    pub threshold: f64,
    /// The score from which a detection is `critical` rather than `warning`.
    pub critical_score: f64,
}

impl Default for InjectionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 5.0,
            critical_score: 9.0,
        }
    }
}

/// The pattern families, in the order ties are broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Sqli = 0,
    Xss = 1,
    PathTraversal = 2,
    CommandInjection = 3,
}

impl Family {
    const ALL: [Family; 4] = [
        Family::Sqli,
        Family::Xss,
        Family::PathTraversal,
        Family::CommandInjection,
    ];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::PathTraversal => "path_traversal",
            Family::CommandInjection => "command_injection",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Family::Sqli => "SQL injection",
            Family::Xss => "cross-site scripting",
            Family::PathTraversal => "path traversal",
            Family::CommandInjection => "command injection",
        }
    }
}

/// One weighted pattern. In `regex`, `{S}` stands for SQL whitespace (blanks or `/* … */`).
struct Pattern {
    family: Family,
    name: &'static str,
    weight: f64,
    regex: &'static str,
}

const fn sqli(name: &'static str, weight: f64, regex: &'static str) -> Pattern {
    Pattern {
        family: Family::Sqli,
        name,
        weight,
        regex,
    }
}

const fn xss(name: &'static str, weight: f64, regex: &'static str) -> Pattern {
    Pattern {
        family: Family::Xss,
        name,
        weight,
        regex,
    }
}

const fn traversal(name: &'static str, weight: f64, regex: &'static str) -> Pattern {
    Pattern {
        family: Family::PathTraversal,
        name,
        weight,
        regex,
    }
}

const fn command(name: &'static str, weight: f64, regex: &'static str) -> Pattern {
    Pattern {
        family: Family::CommandInjection,
        name,
        weight,
        regex,
    }
}

/// SQL whitespace: blanks or an inline comment.
const SQL_SPACE: &str = r"(?:\s|/\*[^*]*\*/)";

/// Every pattern, over decoded, lowercased bytes. Sources: the OWASP testing guide and cheat
/// sheets, PayloadsAllTheThings, the OWASP Core Rule Set's families.
const PATTERNS: &[Pattern] = &[
    // SQL injection.
    sqli(
        "sqli.quote_tautology",
        7.0,
        r#"['"]\)*{S}*(?:(?:or|and|xor)\b|\|\||&&){S}*\(*{S}*['"]?[\w@.]*['"]?\)*{S}*(?:=|<>|!=|<|>|\blike\b|\bis\b)"#,
    ),
    sqli(
        "sqli.or_true",
        6.0,
        r#"['"]\)*{S}*(?:or\b|\|\|){S}*(?:true|not{S}+false)\b"#,
    ),
    sqli(
        "sqli.numeric_tautology",
        6.0,
        r"\b(?:or|and|xor|having)\b{S}*\(*{S}*\d+\)*{S}*(?:=|<>|!=|<=|>=|<|>|\blike\b){S}*\(*{S}*\d+",
    ),
    sqli("sqli.comment_after_quote", 5.0, r"\w'\)*{S}*(?:--|#|/\*)"),
    sqli(
        "sqli.union_select",
        8.0,
        r"\bunion(?:{S}|\()+(?:(?:all|distinct)(?:{S}|\()+)?select\b",
    ),
    sqli(
        "sqli.stacked_ddl",
        8.0,
        r";{S}*(?:drop|truncate|alter|create)\b{S}+(?:table|database|schema|user|view|index|procedure|function)\b",
    ),
    sqli(
        "sqli.stacked_query",
        6.0,
        r";{S}*(?:delete{S}+from\b|insert{S}+into\b|update{S}+[\w.\[\]]+{S}+set\b|select{S}*(?:\*|@@|null\b|\d+{S}*,|\w+\()|exec(?:ute)?{S}*(?:\(|master\b|xp_|sp_)|declare{S}+@|shutdown\b|waitfor{S}+delay\b)",
    ),
    sqli("sqli.drop_table", 3.0, r"\bdrop{S}+(?:table|database)\b"),
    sqli(
        "sqli.time_delay",
        6.0,
        r"\b(?:pg_)?sleep\({S}*\d+(?:\.\d+)?{S}*\)|\bbenchmark{S}*\({S}*\d+{S}*,|\bwaitfor{S}+(?:delay|time){S}*'",
    ),
    sqli(
        "sqli.schema_probe",
        6.0,
        r"\b(?:information_schema|pg_catalog|pg_tables|pg_shadow|sqlite_master|sqlite_schema|sysobjects|syscolumns|mysql\.user|sys\.tables|sys\.objects)\b",
    ),
    sqli(
        "sqli.mssql_procedure",
        8.0,
        r"\b(?:xp_cmdshell|xp_dirtree|xp_regread|xp_fileexist|sp_executesql|sp_oacreate|sp_makewebtask|sp_configure|openrowset|opendatasource)\b",
    ),
    sqli(
        "sqli.file_io",
        7.0,
        r"\bload_file{S}*\(|\binto{S}+(?:out|dump)file\b",
    ),
    sqli(
        "sqli.error_based",
        6.0,
        r"\b(?:extractvalue|updatexml|xmltype|dbms_xmlgen|utl_inaddr|ctxsys\.drithsx)\s*\(",
    ),
    sqli(
        "sqli.server_variable",
        5.0,
        r"@@(?:version|datadir|hostname|basedir|servername)\b",
    ),
    sqli(
        "sqli.info_function",
        3.0,
        r"\b(?:version|user|database|current_user|session_user|system_user|schema|db_name|user_name)\(\)",
    ),
    sqli(
        "sqli.convert_probe",
        4.0,
        r"\b(?:convert|cast)\s*\(\s*(?:int|char|varchar)\b",
    ),
    sqli(
        "sqli.char_concat",
        5.0,
        r"\b(?:char|chr|nchar)\(\d+\)(?:{S}*(?:\+|\|\||,|\s){S}*(?:char|chr|nchar)\(\d+\))+",
    ),
    sqli("sqli.hex_blob", 2.0, r"\b0x[0-9a-f]{6,}\b"),
    sqli(
        "sqli.aggregate_concat",
        5.0,
        r"\b(?:group_concat|string_agg|listagg)\s*\(",
    ),
    sqli("sqli.concat", 2.0, r"\bconcat(?:_ws)?\s*\("),
    sqli(
        "sqli.subquery_function",
        6.0,
        r"\b(?:ascii|substring|substr|mid|ord|length|count|len)\s*\(\s*\(*\s*select\b",
    ),
    sqli("sqli.subselect", 3.0, r"\(\s*select\b"),
    sqli(
        "sqli.order_by_probe",
        5.0,
        r#"['"\d]\)*{S}+(?:order|group){S}+by{S}+\d+\b"#,
    ),
    sqli("sqli.quote_semicolon", 2.0, r"'\)*\s*;"),
    sqli(
        "sqli.quote_concat",
        6.0,
        r"'{S}*(?:\|\||\+){S}*\(*{S}*(?:select|pg_sleep|sleep|chr|char|version|user|database|concat)\b",
    ),
    sqli(
        "sqli.exists_probe",
        7.0,
        r"\b(?:or|and)\b{S}+(?:not{S}+)?exists{S}*\({S}*select\b",
    ),
    sqli("sqli.select_from", 2.0, r"\bselect\b.{1,100}?\bfrom\b"),
    sqli(
        "sqli.keyword_after_quote",
        3.0,
        r"'\)*{S}+(?:union|select|insert|update|delete|drop|exec|order|group|having|waitfor|and|or)\b",
    ),
    // Cross-site scripting (and client-side template injection).
    xss("xss.script_tag", 8.0, r"<\s*/?\s*script\b"),
    xss(
        "xss.encoded_script_tag",
        7.0,
        r"(?:&lt;|&#0*60;?|&#x0*3c;?|\\x3c|\\u003c|%3c)\s*/?\s*script\b",
    ),
    xss(
        "xss.handler_in_tag",
        7.0,
        r#"<[a-z][^>]*?[\s/"'\x60]on[a-z]{3,}\s*="#,
    ),
    xss(
        "xss.event_handler",
        5.0,
        r"\bon(?:error|load|mouseover|mouseenter|mouseleave|mousemove|focus|focusin|blur|click|dblclick|auxclick|contextmenu|toggle|begin|animationstart|animationend|transitionend|pointerover|pointerdown|pointerenter|keydown|keyup|keypress|submit|change|input|wheel|resize|scroll|unload|beforeunload|hashchange|message|pageshow|popstate|copy|cut|paste|drag|dragstart|drop|play|playing|start|finish|search|invalid|readystatechange|afterprint|beforeprint)\s*=",
    ),
    xss("xss.js_uri", 4.0, r"\b(?:java|vb|live)\s*script\s*:"),
    xss(
        "xss.js_uri_call",
        6.0,
        r"\b(?:java|vb|live)\s*script\s*:[^\s]*?[(\x60=]",
    ),
    xss(
        "xss.dangerous_tag",
        5.0,
        r"<\s*(?:iframe|frame|frameset|object|embed|applet|meta|base|svg|math|marquee|isindex|xss|xmp|noscript)\b",
    ),
    xss(
        "xss.tag_with_source",
        3.0,
        r"<\s*(?:img|image|input|body|video|audio|source|details|style|link|form|button|a|div|table|td|object|iframe)\b[^>]*?\b(?:src|href|data|action|formaction|srcdoc|background|dynsrc|lowsrc|style|xlink:href)\s*=",
    ),
    xss(
        "xss.img_src_probe",
        3.0,
        r#"<\s*img\b[^>]*?\bsrc\s*=\s*['"]?(?:x|#|/|1|a)?['"]?[\s>/]"#,
    ),
    xss(
        "xss.dom_cookie",
        5.0,
        r"\bdocument\s*\.\s*(?:cookie|domain)\b|\bdocument\s*\.\s*write(?:ln)?\s*\(",
    ),
    xss(
        "xss.dom_location",
        3.0,
        r"\b(?:document|window|top|self|parent)\s*\.\s*location\b|\blocation\s*\.\s*(?:href|hash|replace|assign)\b",
    ),
    xss(
        "xss.dom_sink",
        4.0,
        r#"\.(?:inner|outer)html\s*=|\bfromcharcode\s*\(|\batob\s*\(|\bnew\s+function\s*\(|\bset(?:timeout|interval)\s*\(\s*['"]"#,
    ),
    xss(
        "xss.dialog_call",
        3.0,
        r"\b(?:alert|prompt|confirm|eval|print)\s*(?:\(|\x60)",
    ),
    xss(
        "xss.tag_break",
        4.0,
        r#"['"]\s*/?>\s*<\s*[a-z/!]|-->\s*<\s*[a-z!]|</\s*(?:title|textarea|style|noscript|script|xmp|iframe)\s*>"#,
    ),
    xss(
        "xss.data_uri",
        5.0,
        r"\bdata\s*:\s*(?:text/html|image/svg|application/(?:x-)?javascript|text/javascript)",
    ),
    xss(
        "xss.css_script",
        4.0,
        r"\bexpression\s*\(|-moz-binding|\bbehavior\s*:\s*url|url\s*\(\s*['\x22]?\s*javascript",
    ),
    xss(
        "xss.template_probe",
        6.0,
        r"\{\{[^}]*(?:constructor|\$on|\$eval|alert|__class__|config|self\.|\d\s*\*\s*\d)[^}]*\}\}|\$\{\s*\d+\s*\*\s*\d+\s*\}|<%=\s*\d+\s*\*\s*\d+\s*%>|#\{\s*\d+\s*\*\s*\d+\s*\}",
    ),
    xss(
        "xss.entity_obfuscation",
        4.0,
        r"&#x?0*(?:106|6a);?\s*&#x?0*(?:97|61);?",
    ),
    // Path traversal and file inclusion.
    traversal(
        "path_traversal.dotdot_repeat",
        6.0,
        r"(?:\.{2,4};?[/\\]{1,2}){2,}|(?:[/\\]\.\.){2,}",
    ),
    traversal(
        "path_traversal.dotdot",
        3.0,
        r#"(?:^|[/\\=:"'\s,;(])\.\.[/\\]"#,
    ),
    traversal(
        "path_traversal.encoded_dotdot",
        6.0,
        r"(?:%2e%2e|%2e\.|\.%2e)(?:%2f|%5c|/|\\)|\.\.(?:%2f|%5c)|%25(?:2e|2f|5c)",
    ),
    traversal(
        "path_traversal.overlong_utf8",
        6.0,
        r"\xc0[\xae\xaf]|\xe0\x80[\xae\xaf]|\xc1[\x9c\x1c]|%c0%a[ef]|%c1%9c|%e0%80%a[ef]|%u002e|%u2215|%u2216|%uff0e|%uff0f",
    ),
    traversal(
        "path_traversal.unix_file",
        6.0,
        r"[/\\]etc[/\\](?:passwd|shadow|group|hosts|issue|hostname|sudoers|crontab|master\.passwd)\b|/proc/(?:self|\d+)/(?:environ|cmdline|fd|maps|status|cwd|root)\b|\.bash_history\b|/\.ssh/(?:id_[a-z0-9]+|authorized_keys)\b",
    ),
    traversal(
        "path_traversal.windows_file",
        6.0,
        r"\b[a-z]:[\\/]+(?:windows|winnt|inetpub|boot\.ini)|\b(?:win|system|boot)\.ini\b|[\\/]system32[\\/]|[\\/]windows[\\/](?:system|win\.ini|repair)",
    ),
    traversal(
        "path_traversal.app_file",
        4.0,
        r"(?:web|meta)-inf[\\/]|\.htaccess\b|\.htpasswd\b|\.git[\\/](?:config|head|index)\b|(?:^|[/\\=])\.env\b|wp-config\.php|appsettings\.json|\.aws[\\/]credentials|/var/log/",
    ),
    traversal("path_traversal.null_byte", 3.0, r"\x00|%00"),
    traversal(
        "path_traversal.stream_wrapper",
        6.0,
        r"\b(?:php|zip|phar|expect|glob|jar|compress\.zlib)://|\bdata://text",
    ),
    traversal("path_traversal.file_scheme", 4.0, r"\bfile:/{2,3}"),
    traversal(
        "path_traversal.file_parameter",
        2.0,
        r"[?&;](?:file|path|page|doc|document|template|include|inc|dir|folder|load|read|download|filename|img|image|style|lang|locale|view|layout)=(?:/|[a-z]:[\\/]|\.\.|[a-z]+://)",
    ),
    // Command injection.
    command(
        "command_injection.chain_command",
        6.0,
        r"(?:;|\||&&|\n|\x60|\$\()\s*(?:whoami|uname|ifconfig|ipconfig|netstat|nslookup|wget|curl|ncat|netcat|bash|sh|zsh|ksh|busybox|powershell|pwsh|cmd|certutil|bitsadmin|mkfifo|telnet|socat|nmap|tftp|systeminfo|tasklist|chmod)\b",
    ),
    command(
        "command_injection.chain_word",
        3.0,
        r"(?:;|\||&&|\x60|\$\()\s*(?:cat|id|ls|dir|echo|ping|sleep|type|env|pwd|rm|ps|kill|more|less|head|tail|touch|cp|mv|find|grep|awk|sed|printf|export|net|reg|python[23]?|perl|ruby|php|node|nc|uname|whoami)\b",
    ),
    command(
        "command_injection.chain_with_arguments",
        4.0,
        r"(?:;|\||&&|\x60|\$\()\s*(?:cat|ls|dir|echo|type|rm|head|tail|more|less|cp|mv|find|grep|touch|chmod|chown|kill|tar|unzip|awk|sed)\s+(?:-{1,2}[a-z]|/|\.{1,2}/|~/?|[a-z]:\\|\$)",
    ),
    command(
        "command_injection.bare_probe",
        6.0,
        r#"(?:;|\||&&|\n|\x60|\$\()\s*(?:id|whoami|uname(?:\s+-[a-z]+)?|pwd|hostname|ifconfig|ipconfig|ls|netstat|systeminfo|tasklist)\s*(?:;|\||&|\x60|\)|#|'|"|%00|$)"#,
    ),
    command("command_injection.subshell", 4.0, r"\$\(\s*[a-z_/]"),
    command(
        "command_injection.backtick_command",
        6.0,
        r"\x60\s*(?:whoami|uname|ifconfig|wget|curl|bash|sh|id|cat|ls|pwd|sleep|ping|echo|nslookup)\b[^\x60]*\x60",
    ),
    command("command_injection.ifs_evasion", 6.0, r"\$\{?ifs\b"),
    command(
        "command_injection.brace_expansion",
        7.0,
        r"\{\s*(?:cat|ls|id|wget|curl|nc|bash|sh|echo|whoami|uname|ping|rm),",
    ),
    command(
        "command_injection.shell_path",
        6.0,
        r"/bin/(?:ba|z|k|da|c|tc)?sh\b|/usr/bin/(?:env|python[23]?|perl|php|ruby|id|whoami|wget|curl)\b|\bcmd(?:\.exe)?\s+/[ck]\b|\bpowershell(?:\.exe)?\s+-|\b(?:ba|z)?sh\s+-c\b",
    ),
    command(
        "command_injection.reverse_shell",
        8.0,
        r"/dev/(?:tcp|udp)/|\bnc(?:at)?\s+(?:-[a-z]+\s+)*(?:\d{1,3}\.){3}\d{1,3}\s+\d+|\bnc(?:at)?\s+-[a-z]*[el][a-z]*\b|\bmkfifo\s+/|\bsocat\s+[a-z]|\bexec\s+\d+<>|\bbash\s+-i\b",
    ),
    command(
        "command_injection.download",
        4.0,
        r#"\b(?:wget|curl|fetch)\s+(?:-[a-z-]+\s+(?:\S+\s+)?)*['"]?(?:https?|ftp)://"#,
    ),
    command(
        "command_injection.pipe_to_shell",
        6.0,
        r"\|\s*(?:ba|z|k)?sh\b",
    ),
    command(
        "command_injection.log4shell",
        8.0,
        r"\$\{\s*(?:jndi|\$\{|lower:|upper:|env:|sys:|::-|date:)",
    ),
    command(
        "command_injection.redirect_write",
        4.0,
        r">{1,2}\s*/(?:tmp|var/www|etc|dev/shm)/|>\s*[a-z0-9_.-]+\.(?:php|jsp|aspx?|sh)\b",
    ),
    command(
        "command_injection.windows_chain",
        5.0,
        r"[&|;]\s*(?:dir|type)\s+[a-z]:\\|[&|;]\s*(?:net\s+(?:user|localgroup)\s|whoami|ipconfig|systeminfo|tasklist)\b",
    ),
    command(
        "command_injection.blind_delay",
        6.0,
        r#"(?:;|\||&&|\n|\x60|\$\()\s*(?:sleep\s+\d+|ping\s+-[cn]\s*\d+|timeout\s+/t\s+\d+)(?:[;|&\x60)#'"]|%00|\s*$)"#,
    ),
    command(
        "command_injection.ping_probe",
        5.0,
        r"\bping\s+-[cnw]\s*\d+",
    ),
    command(
        "command_injection.read_sensitive_file",
        6.0,
        r"\b(?:cat|more|less|head|tail|type|nl|tac)(?:\s|\$\{?ifs\}?)+(?:-[a-z]+\s+)*[^\s;|&]*(?:/etc/|/proc/|win\.ini|\.ssh/|\.env\b)",
    ),
    command(
        "command_injection.script_exec",
        6.0,
        r"\b(?:python[23]?|perl|ruby|php|node)\s+-(?:c|e|r)\b",
    ),
];

/// The result of scanning one event.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scan {
    /// The best family and its score; `None` when nothing matched.
    pub(super) best: Option<(Family, f64)>,
    /// The names of every pattern that matched, in table order.
    pub(super) patterns: Vec<&'static str>,
}

/// The compiled patterns and the buffers reused for every event.
#[derive(Debug)]
pub(super) struct Injection {
    set: RegexSet,
    /// Decoded, lowercased bytes of the string being scanned.
    buffer: Vec<u8>,
    /// Which patterns matched in the event being scanned.
    hits: Vec<bool>,
}

impl Injection {
    pub(super) fn new() -> Self {
        let set = RegexSetBuilder::new(
            PATTERNS
                .iter()
                .map(|pattern| format!("(?-u){}", pattern.regex.replace("{S}", SQL_SPACE))),
        )
        .size_limit(64 << 20)
        // See the module's doc: the lazy DFA's cache.
        .dfa_size_limit(8 << 20)
        .build()
        .expect("the built-in injection patterns compile");
        Self {
            set,
            buffer: Vec::with_capacity(1024),
            hits: vec![false; PATTERNS.len()],
        }
    }

    /// Scores the request strings of `event` (every attribute when `all_attributes`).
    pub(super) fn scan(&mut self, event: &SecurityEvent, all_attributes: bool) -> Scan {
        self.hits.fill(false);
        let mut any = self.scan_value(&event.resource);
        if all_attributes {
            for value in event.attributes.values() {
                any |= self.scan_value(value);
            }
        } else {
            for key in SCANNED_ATTRIBUTES {
                if let Some(value) = event.attributes.get(key) {
                    any |= self.scan_value(value);
                }
            }
        }
        if !any {
            return Scan {
                best: None,
                patterns: Vec::new(),
            };
        }
        let mut scores = [0.0_f64; 4];
        let mut patterns = Vec::new();
        for (pattern, hit) in PATTERNS.iter().zip(&self.hits) {
            if *hit {
                scores[pattern.family as usize] += pattern.weight;
                patterns.push(pattern.name);
            }
        }
        let mut best = (Family::Sqli, 0.0);
        for family in Family::ALL {
            let score = scores[family as usize].min(MAX_SCORE);
            if score > best.1 {
                best = (family, score);
            }
        }
        Scan {
            best: Some(best),
            patterns,
        }
    }

    /// Decodes `value` into the buffer and records the patterns it matches.
    fn scan_value(&mut self, value: &str) -> bool {
        if value.is_empty() {
            return false;
        }
        let bytes = value.as_bytes();
        decode_lowercase(&bytes[..bytes.len().min(MAX_SCAN_BYTES)], &mut self.buffer);
        if !self.set.is_match(&self.buffer) {
            return false;
        }
        for index in self.set.matches(&self.buffer).iter() {
            self.hits[index] = true;
        }
        true
    }

    pub(super) fn observe(
        &mut self,
        event: &SecurityEvent,
        at: i64,
        settings: &InjectionSettings,
        detections: &mut Vec<Detection>,
    ) {
        let reported = event.event_type == SQL_INJECTION_ATTEMPT;
        let scan = self.scan(event, reported);
        let (family, score) = match scan.best {
            Some((family, score)) if reported || score >= settings.threshold => (family, score),
            None if reported => (Family::Sqli, 0.0),
            _ => return,
        };
        let family = if reported { Family::Sqli } else { family };
        // Severity 4 and 5 are HIGH and CRITICAL.
        let critical = score >= settings.critical_score || (reported && event.severity >= 4);
        let ip = event.source_ip.as_str();
        let service = service_name(event);
        let matched = if scan.patterns.is_empty() {
            "no pattern".to_string()
        } else {
            scan.patterns.join(", ")
        };
        let keys: &[(&'static str, &str)] = if reported {
            &[
                ("kind", family.label()),
                ("source_ip", ip),
                ("service", service),
                ("reported", "true"),
            ]
        } else {
            &[
                ("kind", family.label()),
                ("source_ip", ip),
                ("service", service),
            ]
        };
        let from = if ip.is_empty() {
            "an unknown address"
        } else {
            ip
        };
        let incident = Incident {
            detector: "injection",
            alertname: "InjectionAttempt",
            severity: if critical { "critical" } else { "warning" },
            keys,
            summary: if reported {
                format!("{service} reported an SQL injection attempt from {from}")
            } else {
                format!(
                    "{} attempt from {from} on {service} (score {score:.1})",
                    family.describe()
                )
            },
            description: format!(
                "a request from {from} to {service} {} at {} matched {matched} (score {score:.1} \
                 of {MAX_SCORE}, threshold {}){}",
                event.resource,
                rfc3339(at),
                settings.threshold,
                if reported {
                    "; the application reported it as an SQL injection attempt"
                } else {
                    ""
                },
            ),
        };
        let sample = EventSample {
            time_unix_nano: at,
            event_type: event.event_type.clone(),
            user_id: event.user_id.clone(),
            source_ip: event.source_ip.clone(),
            resource: truncate(&event.resource, super::MAX_SAMPLE_BYTES * 8).to_string(),
            patterns: scan.patterns,
            score: Some(score),
        };
        let evidence = Evidence {
            count: 1,
            first_unix_nano: at,
            last_unix_nano: at,
            samples: vec![sample],
            distinct: None,
            score: Some(score),
        };
        detections.push(incident.detection(evidence, at));
    }
}

/// Percent-decodes `text` once (`+` as a space; malformed escapes kept as they are) into
/// `out`, lowercasing ASCII letters.
pub(super) fn decode_lowercase(text: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut index = 0;
    while let Some(&byte) = text.get(index) {
        let decoded = match byte {
            b'%' => match (
                text.get(index + 1).copied().and_then(hex),
                text.get(index + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    index += 2;
                    (high << 4) | low
                }
                _ => b'%',
            },
            b'+' => b' ',
            other => other,
        };
        out.push(decoded.to_ascii_lowercase());
        index += 1;
    }
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

//! The address checks Alertmanager 0.25 makes when it reads a configuration, with Go's rules and
//! error words: URLs as Go's `net/url.Parse` reads them (then `http`/`https` with a host, for
//! webhook and integration URLs), and `host:port` pairs as `net.SplitHostPort` splits them.

use std::fmt;

/// A `host:port` address, such as an SMTP smarthost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPort {
    /// The host name or address (without brackets for IPv6).
    pub host: String,
    /// The port (a number or a service name).
    pub port: String,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.is_empty() && self.port.is_empty() {
            return Ok(());
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Reads a `host:port` as Alertmanager's `HostPort` does: empty text is "not set" (`None`).
pub fn parse_host_port(text: &str) -> Result<Option<HostPort>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let (host, port) = split_host_port(text)?;
    if port.is_empty() {
        return Err(format!("address {text:?}: port cannot be empty"));
    }
    Ok(Some(HostPort {
        host: host.to_string(),
        port: port.to_string(),
    }))
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let error = |why: &str| format!("address {hostport}: {why}");
    let Some(last_colon) = hostport.rfind(':') else {
        return Err(error("missing port in address"));
    };
    let (host, inner_start, inner_end) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(error("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(error("missing port in address"));
        }
        if end + 1 != last_colon {
            if hostport.as_bytes()[end + 1] == b':' {
                return Err(error("too many colons in address"));
            }
            return Err(error("missing port in address"));
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(':') {
            return Err(error("too many colons in address"));
        }
        (host, 0, 0)
    };
    if hostport[inner_start..].contains('[') {
        return Err(error("unexpected '[' in address"));
    }
    if hostport[inner_end..].contains(']') {
        return Err(error("unexpected ']' in address"));
    }
    Ok((host, &hostport[last_colon + 1..]))
}

/// The parts of a URL that Alertmanager's checks look at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The scheme, lower-cased (empty when there is none).
    pub scheme: String,
    /// The host with its port (empty when there is no authority).
    pub host: String,
}

/// Alertmanager's `parseURL`: Go's `url.Parse`, then an `http` or `https` scheme and a host.
pub fn check_http_url(text: &str) -> Result<(), String> {
    let url = parse_go_url(text)?;
    if url.scheme != "http" && url.scheme != "https" {
        return Err(format!("unsupported scheme {:?} for URL", url.scheme));
    }
    if url.host.is_empty() {
        return Err("missing host for URL".to_string());
    }
    Ok(())
}

/// Go's `net/url.Parse`, reduced to its checks and to the scheme and host.
pub fn parse_go_url(raw: &str) -> Result<ParsedUrl, String> {
    let wrap = |why: String| format!("parse {raw:?}: {why}");
    let (without_fragment, fragment) = match raw.find('#') {
        Some(index) => (&raw[..index], Some(&raw[index + 1..])),
        None => (raw, None),
    };
    if let Some(fragment) = fragment {
        check_escapes(fragment, EscapeMode::Fragment).map_err(wrap)?;
    }
    if without_fragment.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(wrap(
            "net/url: invalid control character in URL".to_string(),
        ));
    }

    // The scheme: a letter, then letters, digits, `+`, `-`, `.`, up to a colon.
    let mut scheme = "";
    let mut rest = without_fragment;
    for (index, c) in without_fragment.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if index > 0 => {}
            '0'..='9' | '+' | '-' | '.' => break,
            ':' => {
                if index == 0 {
                    return Err(wrap("missing protocol scheme".to_string()));
                }
                scheme = &without_fragment[..index];
                rest = &without_fragment[index + 1..];
                break;
            }
            _ => break,
        }
    }
    let scheme = scheme.to_ascii_lowercase();

    // The query is not checked by Go's parser.
    let rest = match rest.find('?') {
        Some(index) => &rest[..index],
        None => rest,
    };

    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URL such as `mailto:x`: no host.
            return Ok(ParsedUrl {
                scheme,
                host: String::new(),
            });
        }
        let first_segment = rest.split('/').next().unwrap_or("");
        if first_segment.contains(':') {
            return Err(wrap(
                "first path segment in URL cannot contain colon".to_string(),
            ));
        }
    }

    let mut host = String::new();
    let mut path = rest;
    if rest.starts_with("//") && (!scheme.is_empty() || !rest.starts_with("///")) {
        let authority_and_path = &rest[2..];
        let (authority, remaining) = match authority_and_path.find('/') {
            Some(index) => (&authority_and_path[..index], &authority_and_path[index..]),
            None => (authority_and_path, ""),
        };
        host = parse_authority(authority).map_err(wrap)?;
        path = remaining;
    }
    check_escapes(path, EscapeMode::Path).map_err(wrap)?;
    Ok(ParsedUrl { scheme, host })
}

/// Go's `parseAuthority`: optional user info, then the host (checked as `parseHost` does).
fn parse_authority(authority: &str) -> Result<String, String> {
    let host_part = match authority.rfind('@') {
        Some(index) => {
            let userinfo = &authority[..index];
            let valid = userinfo.chars().all(|c| {
                c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c) || !c.is_ascii()
            });
            if !valid {
                return Err("net/url: invalid userinfo".to_string());
            }
            check_escapes(userinfo, EscapeMode::UserInfo)?;
            &authority[index + 1..]
        }
        None => authority,
    };
    parse_host(host_part)
}

/// Go's `parseHost`: brackets for IPv6, a numeric port, and only the characters Go allows.
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".to_string());
        };
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {colon_port:?} after host"));
        }
    } else if let Some(colon) = host.rfind(':') {
        let colon_port = &host[colon..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {colon_port:?} after host"));
        }
    }
    check_escapes(host, EscapeMode::Host)?;
    Ok(host.to_string())
}

fn valid_optional_port(colon_port: &str) -> bool {
    match colon_port.strip_prefix(':') {
        None => colon_port.is_empty(),
        Some(port) => port.bytes().all(|b| b.is_ascii_digit()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EscapeMode {
    Path,
    Host,
    UserInfo,
    Fragment,
}

/// Go's `unescape` checks: `%` followed by two hex digits (in a host, only `%25` or non-ASCII
/// bytes), and in a host only the characters Go lets through unescaped.
fn check_escapes(text: &str, mode: EscapeMode) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let valid = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !valid {
                    let end = (i + 3).min(bytes.len());
                    let shown = String::from_utf8_lossy(&bytes[i..end]);
                    return Err(format!("invalid URL escape {shown:?}"));
                }
                if mode == EscapeMode::Host {
                    let high = (bytes[i + 1] as char).to_digit(16).unwrap_or(0);
                    if high < 8 && &bytes[i..i + 3] != b"%25" {
                        let shown = String::from_utf8_lossy(&bytes[i..i + 3]);
                        return Err(format!("invalid URL escape {shown:?}"));
                    }
                }
                i += 3;
            }
            b if mode == EscapeMode::Host && b < 0x80 && !host_byte_allowed(b) => {
                return Err(format!(
                    "invalid character {:?} in host name",
                    (b as char).to_string()
                ));
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The ASCII bytes Go's `shouldEscape(c, encodeHost)` lets through.
fn host_byte_allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_as_alertmanager_checks_them() {
        for ok in [
            "http://x/",
            "https://x",
            "HTTP://x/",
            "http://[::1]:80/",
            "http://u:p@x/",
            "http://x?y",
            "http://x#y",
            "http://x:/",
            "http://x:99999/",
            "http://é.com/",
            "http://x/a b",
            "http://x_y/",
        ] {
            assert_eq!(check_http_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ftp://x/", "unsupported scheme \"ftp\" for URL"),
            ("http:///x", "missing host for URL"),
            ("x", "unsupported scheme \"\" for URL"),
            ("http:x", "missing host for URL"),
            (
                "http://x:abc/",
                "parse \"http://x:abc/\": invalid port \":abc\" after host",
            ),
            (
                "http://x y/",
                "parse \"http://x y/\": invalid character \" \" in host name",
            ),
            (
                "http://%41/",
                "parse \"http://%41/\": invalid URL escape \"%41\"",
            ),
            (
                "http://x/%zz",
                "parse \"http://x/%zz\": invalid URL escape \"%zz\"",
            ),
            (
                "http://[::1/",
                "parse \"http://[::1/\": missing ']' in host",
            ),
            (
                " http://x/",
                "parse \" http://x/\": first path segment in URL cannot contain colon",
            ),
        ] {
            assert_eq!(check_http_url(bad), Err(why.to_string()), "{bad}");
        }
    }

    #[test]
    fn host_ports_as_go_splits_them() {
        assert_eq!(
            parse_host_port("smtp.example.org:587"),
            Ok(Some(HostPort {
                host: "smtp.example.org".into(),
                port: "587".into()
            }))
        );
        assert_eq!(
            parse_host_port("[::1]:25").map(|hp| hp.map(|hp| hp.host)),
            Ok(Some("::1".to_string()))
        );
        assert_eq!(parse_host_port(""), Ok(None));
        assert_eq!(
            parse_host_port(":25").map(|hp| hp.map(|hp| hp.to_string())),
            Ok(Some(":25".to_string()))
        );
        assert_eq!(
            parse_host_port("h"),
            Err("address h: missing port in address".to_string())
        );
        assert_eq!(
            parse_host_port("h:"),
            Err("address \"h:\": port cannot be empty".to_string())
        );
        assert_eq!(
            parse_host_port("a:b:c"),
            Err("address a:b:c: too many colons in address".to_string())
        );
    }
}

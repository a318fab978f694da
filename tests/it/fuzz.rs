//! Randomised input tests (issue 11, "Randomised input tests"): the pure parsers at the edge
//! never panic on arbitrary input, refuse what their rules refuse, and keep what they accept.
//! 256 cases per property by default (well under the CI budget); `LCA_FUZZ_CASES=100000`
//! runs longer.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use laventecare_auth::clients::RedirectUri;
use laventecare_auth::extract::decode_urlencoded;
use laventecare_auth::protocol::authorize::claims::{ClaimsRequest, MAX_CLAIMS_BYTES};
use laventecare_auth::protocol::device::{USER_CODE_ALPHABET, USER_CODE_LEN, display_user_code, normalise_user_code};
use laventecare_auth::protocol::types::{Scopes, valid_pkce_value};
use proptest::prelude::*;

/// The number of cases, read once from `LCA_FUZZ_CASES` (default 256).
fn cases() -> u32 {
    static CASES: OnceLock<u32> = OnceLock::new();
    *CASES.get_or_init(|| std::env::var("LCA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256))
}

fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(cases()) }
}

/// Percent-encodes every byte, so any string round-trips through form decoding.
fn percent_encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A canonical user code: `USER_CODE_LEN` letters of the alphabet.
fn user_code() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(USER_CODE_ALPHABET.to_vec()), USER_CODE_LEN)
        .prop_map(|letters| letters.into_iter().map(char::from).collect())
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes never panic; whatever decodes has no control character anywhere.
    #[test]
    fn urlencoded_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(pairs) = decode_urlencoded::<Vec<(String, String)>>(&bytes) {
            prop_assert!(pairs.iter().all(|(k, v)| !k.chars().chain(v.chars()).any(char::is_control)));
        }
        let _ = decode_urlencoded::<BTreeMap<String, String>>(&bytes);
    }

    /// Well-formed pairs without control characters come back exactly.
    #[test]
    fn urlencoded_round_trip(pairs in proptest::collection::vec(("[^\\p{Cc}]{1,20}", "[^\\p{Cc}]{0,40}"), 0..8)) {
        let body = pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>().join("&");
        let decoded: Vec<(String, String)> = decode_urlencoded(body.as_bytes()).unwrap();
        prop_assert_eq!(decoded, pairs);
    }

    /// One control character in a name or a value, encoded or raw, refuses the whole input.
    #[test]
    fn urlencoded_refuses_control(
        k in "[a-z]{1,8}", v in "[^\\p{Cc}]{0,20}", c in "\\p{Cc}", at in 0usize..21, in_name in any::<bool>(),
    ) {
        let mut chars: Vec<char> = if in_name { k.chars().collect() } else { v.chars().collect() };
        let at = at.min(chars.len());
        chars.insert(at, c.chars().next().unwrap());
        let poisoned: String = chars.into_iter().collect();
        let (k, v) = if in_name { (poisoned, v) } else { (k, poisoned) };
        let body = format!("{}={}&ok=1", percent_encode(&k), percent_encode(&v));
        prop_assert!(decode_urlencoded::<Vec<(String, String)>>(body.as_bytes()).is_err());
        prop_assert!(decode_urlencoded::<BTreeMap<String, String>>(body.as_bytes()).is_err());
    }

    /// Any string: no panic; what is accepted is fragment-free, credential-free, https or
    /// loopback http or a dotted private-use scheme, kept verbatim, and re-parses the same.
    #[test]
    fn redirect_uri_arbitrary(raw in prop_oneof![
        any::<String>(),
        "(https?|javascript|data|file|com\\.example\\.app|myapp)://?[a-zA-Z0-9.:@\\[\\]%#?/=&-]{0,40}",
        "http://(localhost|127\\.0\\.0\\.1|\\[::1\\]|127\\.1\\.2\\.3|localhost\\.evil\\.com|[a-z]{1,8})(:[0-9]{1,5})?/[a-z#@]{0,10}",
    ]) {
        let Ok(uri) = RedirectUri::parse(&raw) else { return Ok(()) };
        prop_assert_eq!(uri.as_str(), raw.as_str());
        prop_assert!(!raw.contains('#'));
        prop_assert!(raw.len() <= 2000);
        prop_assert!(!raw.chars().any(|c| c.is_control() || c.is_whitespace()));
        let url = url::Url::parse(&raw).unwrap();
        prop_assert!(url.fragment().is_none());
        prop_assert!(url.username().is_empty() && url.password().is_none());
        match url.scheme() {
            "https" => prop_assert!(url.host().is_some()),
            "http" => prop_assert!(match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }, "non-loopback http accepted: {}", raw),
            scheme => prop_assert!(scheme.contains('.'), "scheme accepted: {}", scheme),
        }
        prop_assert_eq!(RedirectUri::parse(uri.as_str()), Ok(uri.clone()));
    }

    /// A fragment or userinfo on an otherwise valid https URI is always refused.
    #[test]
    fn redirect_uri_fragment_or_userinfo(host in "[a-z]{1,10}\\.example", path in "[a-z/]{0,10}",
        frag in "[a-z]{0,5}", user in "[a-z]{1,5}") {
        let base = format!("https://{host}/{path}");
        prop_assert!(RedirectUri::parse(&base).is_ok());
        let with_fragment = format!("{base}#{frag}");
        prop_assert!(RedirectUri::parse(&with_fragment).is_err());
        let with_user = format!("https://{user}@{host}/{path}");
        prop_assert!(RedirectUri::parse(&with_user).is_err());
        let with_password = format!("https://{user}:pw@{host}/{path}");
        prop_assert!(RedirectUri::parse(&with_password).is_err());
        let plain_http = format!("http://{host}/{path}");
        prop_assert!(RedirectUri::parse(&plain_http).is_err());
    }

    /// PKCE values (RFC 7636 §4.1, §4.2): exactly 43–128 unreserved characters.
    #[test]
    fn pkce_exact(s in prop_oneof![any::<String>(), "[A-Za-z0-9._~-]{0,140}", "[A-Za-z0-9._~+/=-]{40,130}"]) {
        let unreserved = s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
        let expected = unreserved && (43..=128).contains(&s.chars().count());
        prop_assert_eq!(valid_pkce_value(&s), expected, "{:?}", s);
    }

    /// Normalisation is idempotent and only removes dashes and spaces and uppercases: two
    /// different canonical codes never meet, and any spelling of a code maps to it alone.
    #[test]
    fn user_code_normalisation(a in user_code(), b in user_code(), typed in any::<String>(),
        lower in proptest::collection::vec(any::<bool>(), USER_CODE_LEN), seps in "[ -]{0,3}") {
        for code in [&a, &b] {
            prop_assert_eq!(normalise_user_code(code), Some(code.to_string()));
            prop_assert_eq!(normalise_user_code(&display_user_code(code)), Some(code.to_string()));
        }
        if a != b {
            prop_assert_ne!(normalise_user_code(&a), normalise_user_code(&b));
        }
        let spelled: String = a.chars().zip(&lower)
            .map(|(c, l)| if *l { c.to_ascii_lowercase() } else { c })
            .enumerate().map(|(i, c)| if i == 4 { format!("{seps}{c}") } else { c.to_string() }).collect();
        prop_assert_eq!(normalise_user_code(&spelled), Some(a.clone()));
        if let Some(n) = normalise_user_code(&typed) {
            prop_assert_eq!(normalise_user_code(&n), Some(n.clone()));
            let stripped: String = typed.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
            prop_assert!(stripped.eq_ignore_ascii_case(&n));
        }
    }

    /// Scopes: no panic; bounded; every accepted scope is RFC 6749 §3.3 characters; the
    /// printed set parses back to itself.
    #[test]
    fn scopes(raw in prop_oneof![any::<String>(), "[a-z \"\\\\]{0,60}", ".{900,1100}"]) {
        let Ok(scopes) = Scopes::parse(&raw) else { return Ok(()) };
        prop_assert!(raw.len() <= 1000);
        prop_assert!(scopes.iter().all(|s| !s.is_empty()
            && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))));
        prop_assert_eq!(Scopes::parse(&scopes.to_string()), Ok(scopes.clone()));
    }

    /// The claims parameter: no panic; bounded; what parses survives its stored form.
    #[test]
    fn claims_parameter(raw in prop_oneof![
        any::<String>(),
        "\\{\"(id_token|userinfo|x)\":(null|\\[\\]|\\{(\"[a-z]{1,5}\":(null|\\{\"essential\":(true|1)\\}|\\[\\]),?){0,4}\\})\\}",
        "\\{\"id_token\":\\{\"acr\":\\{\"values\":\\[.{0,4000}\\]\\}\\}\\}",
    ]) {
        let Ok(request) = ClaimsRequest::parse(&raw) else { return Ok(()) };
        prop_assert!(raw.len() <= MAX_CLAIMS_BYTES);
        prop_assert_eq!(ClaimsRequest::from_stored(&request.to_stored()), Some(request.clone()));
    }
}

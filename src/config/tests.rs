use super::*;

#[test]
fn loader_fields_match_schema() {
    crate::assert_fields_match_schema::<ConfigDoc>(FIELDS);
}

#[test]
fn hosts() {
    assert!(check_host("https://platform.kore.ai").is_ok());
    assert!(check_host("http://127.0.0.1:8085").is_ok());
    assert!(check_host("http://platform.kore.ai").is_err());
    assert!(check_host("https://platform.kore.ai/api").is_err());
    for ok in ["http://127.0.0.1:1", "http://127.5.6.7", "http://localhost:80", "http://[::1]:8085", "http://LOCALHOST"]
    {
        assert!(check_host(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://127.evil.example",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.example",
        "http://0.0.0.0",
        "http://10.0.0.1",
        "http://[::ffff:10.0.0.1]",
        "https://u:p@kore.example.com",
        "https://kore.example.com/?x=1",
        "ftp://127.0.0.1",
    ] {
        assert!(check_host(bad).is_err(), "{bad}");
    }
}

#[test]
fn target_fields_match_schema() {
    crate::assert_fields_match_schema::<doc::TargetDoc>(target::TARGET_FIELDS);
    crate::assert_fields_match_schema::<doc::AudienceDoc>(target::AUDIENCE_FIELDS);
}

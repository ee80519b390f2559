//! Unit tests of the machine's private helpers.

use super::upload::check_url;

#[test]
fn urls_are_checked() {
    assert!(check_url("https://youtu.be/abc").is_ok());
    assert!(check_url("ftp://x.com/a").is_err());
    assert!(check_url("https://").is_err());
    assert!(check_url("https://exa mple.com").is_err());
    assert!(check_url("http://localhost/x").is_err());
}

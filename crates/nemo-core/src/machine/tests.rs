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

#[test]
fn credits_named_in_a_2001_message() {
    use super::failure::credits_in;
    assert_eq!(
        credits_in("Insufficient credits: this needs 5, 2 available"),
        (Some(5.0), Some(2.0))
    );
    assert_eq!(
        credits_in("required: 12.5, available: 0"),
        (Some(12.5), Some(0.0))
    );
    assert_eq!(
        credits_in("You need 3 credits but have 1"),
        (Some(3.0), Some(1.0))
    );
    assert_eq!(credits_in("insufficient credits"), (None, None));
}

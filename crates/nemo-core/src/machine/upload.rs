//! Uploads: files first, then links, each checked before it leaves.

use super::*;
use crate::error::{ErrorKind, NemoError};

impl Session {
    pub(super) fn after_upload_part(&mut self) -> Next {
        if let Some(Op::Upload { files, urls }) = current_op!(self) {
            if !files.is_empty() {
                files.clear();
                if !urls.is_empty() {
                    return Next::Wait;
                }
            } else {
                urls.clear();
            }
        }
        Next::Done
    }
}

pub(super) fn check_url(url: &str) -> Result<(), NemoError> {
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && url.len() > "https://x.y".len() - 1
        && !url.chars().any(char::is_whitespace)
        && url.split("://").nth(1).is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && host.contains('.')
        });
    if ok {
        Ok(())
    } else {
        Err(NemoError::new(
            ErrorKind::BadInput,
            format!("`{url}` is not a valid link. Give a full http:// or https:// URL."),
        ))
    }
}

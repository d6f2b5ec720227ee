//! Whether the text report goes to a terminal that wants colour.

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty
/// (no-color.org).
pub fn wanted(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_pipes_get_none() {
        assert!(wanted(true, None));
        assert!(wanted(true, Some(std::ffi::OsStr::new(""))));
        assert!(!wanted(true, Some(std::ffi::OsStr::new("1"))));
        assert!(!wanted(false, None));
    }
}

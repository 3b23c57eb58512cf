//! ANSI styling for the terminal reporter, or none at all.
//!
//! Plain SGR codes, so no dependency decides about colour: the caller does
//! (`NO_COLOR`, `--color`, whether stderr is a terminal) and passes a bool.

/// Paints text when colour is on and leaves it alone otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Painter {
    enabled: bool,
}

impl Painter {
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    pub(crate) fn enabled(self) -> bool {
        self.enabled
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled && !text.is_empty() {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub(crate) fn bold_red(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub(crate) fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub(crate) fn magenta(self, text: &str) -> String {
        self.paint("35", text)
    }

    pub(crate) fn cyan(self, text: &str) -> String {
        self.paint("36", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_means_plain() {
        assert_eq!(Painter::new(false).red("x"), "x");
        assert_eq!(Painter::new(true).red("x"), "\u{1b}[31mx\u{1b}[0m");
        assert_eq!(Painter::new(true).red(""), "");
    }
}

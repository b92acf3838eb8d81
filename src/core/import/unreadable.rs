//! Why a whole upload cannot be read.

/// Why a whole file cannot be read: answered 422 (413 when `too_large`), nothing is
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub code: &'static str,
    pub message: String,
    /// The file would take more than the service reads (a workbook that unpacks past
    /// its limit): 413.
    pub too_large: bool,
}

impl Unreadable {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            too_large: false,
        }
    }

    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            too_large: true,
            ..Self::new(code, message)
        }
    }
}

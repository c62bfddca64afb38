//! Errors the user caused, told apart from the tool failing: one marker type
//! (`BadInput`), the typed errors whose variants say "bad input", and the one
//! place that maps them to exit codes (2: bad input, 3: the tool failed).

/// Marks an error as the user's input (exit code 2) rather than the tool failing (3).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

pub fn bad(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(BadInput(format!("{e:#}")))
}

/// `bad(e)` when `e` carries an `E` that `is_bad` calls the user's input; else `e` as it is.
/// The decision is on the error's type and variant, never on its text.
pub fn bad_if<E>(e: anyhow::Error, is_bad: impl Fn(&E) -> bool) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    if e.chain().any(|c| c.downcast_ref::<E>().is_some_and(&is_bad)) {
        bad(e)
    } else {
        e
    }
}

/// The process exit code for an error that ended a command.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let bad_input = |c: &(dyn std::error::Error + 'static)| {
        c.is::<BadInput>() || c.is::<scx_contract::names::UnknownName>() || c.is::<scx_contract::config::ConfigError>()
    };
    if e.chain().any(bad_input) {
        crate::exit::BAD_INPUT
    } else {
        crate::exit::TOOL_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::vm;

    #[test]
    fn bad_input_maps_to_exit_2() {
        assert_eq!(exit_code(&bad(anyhow::anyhow!("x"))), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("qemu died")), 3);
        assert_eq!(exit_code(&bad(anyhow::anyhow!("x")).context("while doing y")), 2);
    }

    #[test]
    fn typed_errors_decide_bad_input() {
        use crate::artifacts::download::DownloadError;
        let in_use = || anyhow::Error::from(vm::VmError::NameInUse { name: "scx1".into(), pid: 42 });
        let e = bad_if(in_use(), vm::VmError::is_bad_input);
        assert_eq!(exit_code(&e), 2);
        assert_eq!(e.to_string(), "VM name `scx1` is in use (QEMU pid 42); pick another --name or run `scx-vmctl down scx1`");
        // Found under context too, and the whole message is kept.
        let e = bad_if(in_use().context("booting scx1"), vm::VmError::is_bad_input);
        assert_eq!(exit_code(&e), 2);
        assert!(e.to_string().starts_with("booting scx1: VM name `scx1` is in use"), "{e}");

        let mismatch = DownloadError::ChecksumMismatch {
            what: "kernel".into(),
            url: "http://127.0.0.1/bzImage".into(),
            expected: "a".repeat(64),
            got: "b".repeat(64),
        };
        assert_eq!(exit_code(&bad_if(mismatch.into(), DownloadError::is_bad_input)), 2);
        assert_eq!(exit_code(&bad_if(DownloadError::BadChecksumArg("xyz".into()).into(), DownloadError::is_bad_input)), 2);
        let http = DownloadError::Http {
            what: "kernel".into(),
            url: "http://127.0.0.1/bzImage".into(),
            status: reqwest::StatusCode::NOT_FOUND,
        };
        assert_eq!(exit_code(&bad_if(http.into(), DownloadError::is_bad_input)), 3);
        // Text alone decides nothing: an untyped error saying "expected" or "is in use" stays a tool failure.
        assert_eq!(exit_code(&bad_if(anyhow::anyhow!("expected x, is in use"), DownloadError::is_bad_input)), 3);
        assert_eq!(exit_code(&bad_if(anyhow::anyhow!("VM name `a` is in use"), vm::VmError::is_bad_input)), 3);
    }
}

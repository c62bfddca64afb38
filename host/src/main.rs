use clap::Parser;

fn main() {
    let cli = scx_vmctl::cli::Cli::parse();
    use scx_vmctl::cli::Cmd;
    if matches!(cli.command, Cmd::Up(_) | Cmd::Ssh(_) | Cmd::Status(_) | Cmd::List) {
        // Short commands read through pipes (`up | head -1`, `ssh -- dmesg |
        // less`): end quietly on a closed pipe, as other Unix tools do, not
        // with Rust's panic on the failed print. A VM `up` started stays up.
        // SAFETY: no other thread exists yet.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = match rt.block_on(scx_vmctl::cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            scx_vmctl::errln!("error: {e:#}");
            scx_vmctl::error::exit_code(&e)
        }
    };
    drop(rt);
    std::process::exit(code);
}

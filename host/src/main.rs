use clap::Parser;

fn main() {
    let cli = scx_vmctl::cli::Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = match rt.block_on(scx_vmctl::cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            scx_vmctl::error::exit_code(&e)
        }
    };
    drop(rt);
    std::process::exit(code);
}

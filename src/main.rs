fn main() -> std::process::ExitCode {
    casapay::cli::main()
}

fn main() -> std::process::ExitCode {
    seal::cli::seal::main()
}

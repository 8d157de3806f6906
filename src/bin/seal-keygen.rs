fn main() -> std::process::ExitCode {
    seal::cli::keygen::main()
}

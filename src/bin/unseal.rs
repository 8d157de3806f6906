fn main() -> std::process::ExitCode {
    seal::cli::unseal::main()
}

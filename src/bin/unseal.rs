fn main() -> std::process::ExitCode {
    seal::__private::cli::unseal::main()
}

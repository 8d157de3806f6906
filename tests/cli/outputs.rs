//! Existing outputs: never overwritten without `--force`.

use std::fs;

use crate::common::*;

#[test]
fn an_existing_output_is_never_overwritten_without_force() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("report", "plain\n");
    let sealed = seal_to_server(&dir, b"plain\n");
    fs::create_dir(dir.path("in")).unwrap();
    dir.write("in/report.age", &sealed);
    // (command line, the output it names)
    let cases = [
        ("seal report --to server.pub", "report.age"),
        ("seal report --to server.pub -o sealed.age", "sealed.age"),
        ("unseal in/report.age -k server.key", "in/report"),
        ("unseal in/report.age -k server.key -o report", "report"),
    ];
    each_row(cases.map(|case| (case.0, case)), |(line, output)| {
        let program = line.split(' ').next().unwrap();
        let existed = fs::read(dir.path(output)).ok();
        dir.write(output, "keep me\n");
        let before = dir.listing();
        let error = format!("error: {output}: output file already exists");
        let says = Says::Hint(&[&error], "use --force to overwrite it");
        refuses(&dir, dir.line(line), EXIT_IO, says);
        assert_eq!(dir.read_string(output), "keep me\n", "{line}");

        for force in ["--force", "-f"] {
            dir.write(output, "keep me\n");
            dir.line(line).arg(force).run().ok();
            let written = dir.read(output);
            let plaintext = match program {
                "seal" => unseal_via(&dir, Io::Pipes, &written, WITH_KEY),
                _ => written,
            };
            assert_eq!(plaintext, b"plain\n", "{line} {force}");
            assert_eq!(dir.listing(), before, "{line} {force}");
        }
        match existed {
            Some(contents) => dir.write(output, contents),
            None => dir.remove(output),
        }
    });
}

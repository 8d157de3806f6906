//! `unseal --inspect`: what a sealed file holds, as text or JSON, without opening it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use super::failure::Failure;
use super::keyargs::{self, PassphraseFlags};
use crate::format::armor::is_armored;
use crate::format::Header;
use crate::inspect::Inspection;
use crate::json::{json_path, json_string};
use crate::keys::plugin::Client;
use crate::rotate::{MalformedRecord, Record, Rotation};
use crate::signing::sender::read_record;

/// Inspects one file (or standard input) and prints the report on standard output.
pub fn run(
    inputs: &[PathBuf],
    keys: &[PathBuf],
    passphrase: &PassphraseFlags,
    plugins: &Client,
    json: bool,
) -> Result<(), Failure> {
    let input = match inputs {
        [] => None,
        [one] if one.as_os_str() == "-" => None,
        [one] => Some(one.as_path()),
        _ => return Err(Failure::usage("--inspect takes one file")),
    };
    let name: &Path = input.unwrap_or("standard input".as_ref());
    let (info, header) = match input {
        Some(path) => inspect_file(path)?,
        None => {
            let mut all = Vec::new();
            io::stdin()
                .read_to_end(&mut all)
                .map_err(|e| Failure::io(name, &e))?;
            inspect_bytes(&all, name)?
        }
    };
    let mut identities = Vec::new();
    for path in keys {
        identities.push((
            path,
            keyargs::identity_file("unseal", path, passphrase, plugins)?,
        ));
    }
    // For each stanza, the key files that open it, or say it is theirs but broken.
    let matches: Vec<Vec<String>> = header
        .stanzas
        .iter()
        .map(|stanza| {
            let mut found = Vec::new();
            for (path, ids) in &identities {
                for id in ids {
                    match id.unwrap_stanza(stanza) {
                        Some(Ok(_)) => found.push(crate::shown::path(path)),
                        Some(Err(e)) => {
                            found.push(format!("{} (but: {e})", crate::shown::path(path)))
                        }
                        None => continue,
                    }
                    break;
                }
            }
            found
        })
        .collect();
    let rotation = match input {
        Some(path) => rotation(path, &header)?,
        None => None,
    };
    let report = Report {
        info: &info,
        name,
        matches: &matches,
        keyed: !keys.is_empty(),
        rotation: rotation.as_ref(),
    };
    let report = match json {
        true => report.json(),
        false => report.text(),
    };
    print!("{report}");
    Ok(())
}

/// A file: the header read from its start, the sizes from its length (it is not read whole
/// unless it is armored).
fn inspect_file(path: &Path) -> Result<(Inspection, Header), Failure> {
    let mut file = File::open(path).map_err(|e| Failure::io(path, &e))?;
    let mut start = [0u8; 64];
    let n = read_up_to(&mut file, &mut start).map_err(|e| Failure::io(path, &e))?;
    if is_armored(&start[..n]) {
        let mut all = start[..n].to_vec();
        file.read_to_end(&mut all)
            .map_err(|e| Failure::io(path, &e))?;
        return inspect_bytes(&all, path);
    }
    file.rewind().map_err(|e| Failure::io(path, &e))?;
    let len = file.metadata().map_err(|e| Failure::io(path, &e))?.len();
    let header =
        Header::read(&mut BufReader::new(file)).map_err(|e| Failure::from(e).about(path))?;
    let header_len = header.to_bytes().len() as u64;
    Ok((Inspection::new(&header, header_len, len, false), header))
}

/// What the rotation record beside a file says (`None`: it has none): its rotations, if the
/// file carries the header the record names; else why the record is not the file's.
type Rotated = Result<Vec<Rotation>, &'static str>;

fn rotation(path: &Path, header: &Header) -> Result<Option<Rotated>, Failure> {
    let record_path = crate::rotate::record_path(path);
    let text = read_record(&record_path).map_err(|e| Failure::io(&record_path, &e))?;
    Ok(text.map(|text| match Record::parse(&text) {
        Ok(record) if record.current == header.to_bytes() => Ok(record.rotations),
        Ok(_) => Err("its record names another header: an interrupted rotation (run it again), or another file's record"),
        Err(MalformedRecord(why)) => Err(why),
    }))
}

fn inspect_bytes(all: &[u8], name: &Path) -> Result<(Inspection, Header), Failure> {
    Inspection::of_bytes(all).map_err(|e| Failure::from(e).about(name))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

/// What `--inspect` reports about one file.
struct Report<'a> {
    info: &'a Inspection,
    name: &'a Path,
    /// For each stanza, the key files that open it.
    matches: &'a [Vec<String>],
    /// Keys were given.
    keyed: bool,
    rotation: Option<&'a Rotated>,
}

impl Report<'_> {
    fn text(&self) -> String {
        let Report {
            info,
            name,
            matches,
            keyed,
            rotation,
        } = *self;
        let mut out = String::new();
        let _ = writeln!(out, "file: {}", crate::shown::path(name));
        let _ = writeln!(out, "format: {}", info.version);
        let armor = if info.armored {
            "yes (sizes below are of the decoded file)"
        } else {
            "no"
        };
        let _ = writeln!(out, "armored: {armor}");
        let _ = writeln!(out, "header: {} bytes", info.header_len);
        match &info.plaintext {
            Ok((plain, chunks)) => {
                let _ = writeln!(
                out,
                "payload: {} bytes (16-byte nonce, {chunks} chunk{}, {plain} bytes of plaintext)",
                info.payload_len,
                if *chunks == 1 { "" } else { "s" }
            );
            }
            Err(e) => {
                let _ = writeln!(out, "payload: {} bytes, invalid: {e}", info.payload_len);
            }
        }
        match rotation {
            None => {}
            Some(Ok(rotations)) => {
                let n = rotations.len();
                let _ = writeln!(out, "rotated: {n} time{}", if n == 1 { "" } else { "s" });
                for rotation in rotations {
                    let from = rotation
                        .from
                        .as_deref()
                        .unwrap_or("a key without a fingerprint");
                    let _ = writeln!(out, "  {} from {from}", rotation.time);
                }
            }
            Some(Err(why)) => {
                let _ = writeln!(out, "rotated: unknown, {why}");
            }
        }
        let _ = writeln!(out, "stanzas: {}", info.stanzas.len());
        for (i, (stanza, found)) in info.stanzas.iter().zip(matches).enumerate() {
            let kind = crate::shown::escape(stanza.kind.as_bytes());
            let target = crate::shown::escape(stanza.target().as_bytes());
            if stanza.signer().is_some() {
                let _ = writeln!(out, "  {}. {kind}: {target}", i + 1);
                continue;
            }
            let _ = writeln!(out, "  {}. {kind}, recipient: {target}", i + 1);
            if keyed {
                match found.as_slice() {
                    [] => {
                        let _ = writeln!(out, "     opens with: none of the keys given");
                    }
                    found => {
                        let _ = writeln!(out, "     opens with: {}", found.join(", "));
                    }
                }
            }
        }
        out
    }

    fn json(&self) -> String {
        let Report {
            info,
            name,
            matches,
            keyed,
            rotation,
        } = *self;
        let mut out = String::from("{");
        json_path(&mut out, "file", Some(name));
        out.remove(1); // json_path writes a leading comma
        out.push_str(",\"format\":");
        json_string(&mut out, info.version);
        let _ = write!(
            out,
            ",\"armored\":{},\"header_bytes\":{},\"payload_bytes\":{}",
            info.armored, info.header_len, info.payload_len
        );
        match &info.plaintext {
            Ok((plain, chunks)) => {
                let _ = write!(
                    out,
                    ",\"plaintext_bytes\":{plain},\"chunks\":{chunks},\"payload_error\":null"
                );
            }
            Err(e) => {
                out.push_str(",\"plaintext_bytes\":null,\"chunks\":null,\"payload_error\":");
                json_string(&mut out, &e.to_string());
            }
        }
        out.push_str(",\"rotations\":");
        match rotation {
            Some(Ok(rotations)) => {
                out.push('[');
                for (i, rotation) in rotations.iter().enumerate() {
                    out.push_str(if i > 0 { ",{\"time\":" } else { "{\"time\":" });
                    json_string(&mut out, &rotation.time);
                    out.push_str(",\"from\":");
                    match &rotation.from {
                        Some(from) => json_string(&mut out, from),
                        None => out.push_str("null"),
                    }
                    out.push('}');
                }
                out.push_str("],\"rotation_error\":null");
            }
            Some(Err(why)) => {
                out.push_str("null,\"rotation_error\":");
                json_string(&mut out, why);
            }
            None => out.push_str("null,\"rotation_error\":null"),
        }
        out.push_str(",\"stanzas\":[");
        for (i, (stanza, found)) in info.stanzas.iter().zip(matches).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"type\":");
            json_string(&mut out, &stanza.kind);
            out.push_str(",\"args\":[");
            for (j, arg) in stanza.args.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_string(&mut out, arg);
            }
            let _ = write!(out, "],\"body_bytes\":{},\"tag\":", stanza.body_len);
            match &stanza.tag {
                Some(tag) => json_string(&mut out, tag),
                None => out.push_str("null"),
            }
            out.push_str(",\"recipient\":");
            if let Some(signer) = stanza.signer() {
                out.push_str("null,\"signer\":");
                json_string(&mut out, signer);
            } else {
                json_string(&mut out, &stanza.target());
            }
            if keyed && stanza.signer().is_none() {
                out.push_str(",\"opens_with\":[");
                for (j, key) in found.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json_string(&mut out, key);
                }
                out.push(']');
            }
            out.push('}');
        }
        out.push_str("]}\n");
        out
    }
}

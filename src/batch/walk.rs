//! Planning: walk the inputs and decide, file by file, what to do and where the output goes.
//!
//! With an output directory, a directory input `.../NAME` is mirrored under `OUTDIR/NAME`, and
//! a file input `.../FILE` goes to `OUTDIR/FILE.age` (sealing) or `OUTDIR/FILE` without `.age`
//! (unsealing), as `cp -r` would place them. Without one, each output goes beside its input.
//!
//! Inputs named on the command line are followed if they are symbolic links (the operator
//! named them); links found inside a tree are not, unless asked, and then only to targets
//! inside the input root, and never into a directory that contains the link (a loop). A
//! directory reached by a link is mirrored under the link's name, as `cp -rL` would.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, FileType, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{
    is_partial_name, Direction, FileError, FileId, Job, Options, Outcome, Plan, PlannedDir,
};
use super::{Report, Skip};
use crate::file::staging::dir::parent;

/// Walks `inputs` (files and directories) and plans the batch. Reads only; writes nothing.
pub fn plan(inputs: &[PathBuf], options: &Options) -> Plan {
    let mut planner = Planner {
        options,
        plan: Plan::default(),
        outputs: HashSet::new(),
        dirs: HashSet::new(),
        input_dirs: HashSet::new(),
        out_dir_id: options
            .output_dir
            .as_deref()
            .and_then(|dir| fs::metadata(dir).ok())
            .map(|meta| id(&meta)),
    };
    if let Some(dir) = &options.output_dir {
        planner.output_dir(dir.clone(), true);
    }
    for input in inputs {
        planner.input(input);
    }
    planner.plan
}

/// A file or directory's identity on its device.
fn id(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

struct Planner<'a> {
    options: &'a Options,
    plan: Plan,
    outputs: HashSet<PathBuf>,
    /// The entries of `plan.output_dirs`, for a quick look-up.
    dirs: HashSet<PathBuf>,
    /// The entries of `plan.input_dirs`, for a quick look-up.
    input_dirs: HashSet<PathBuf>,
    out_dir_id: Option<(u64, u64)>,
}

/// A directory to walk: where it is, and where its outputs go.
struct Walk {
    dir: PathBuf,
    /// Opened by its path: the tree's root, or a directory reached by a followed link.
    named: bool,
    id: FileId,
    out: PathBuf,
    /// The directories this one lies in, itself included: a followed link must not lead
    /// back to one of them.
    ancestors: Vec<(u64, u64)>,
}

impl Planner<'_> {
    fn input(&mut self, input: &Path) {
        let meta = match fs::metadata(input) {
            Ok(meta) => meta,
            Err(e) => return self.fail(input, 0, FileError::Read(e)),
        };
        if meta.is_dir() {
            self.tree(input, &meta);
        } else if meta.is_file() {
            let name = input.file_name().unwrap_or(input.as_os_str());
            let out_dir = match &self.options.output_dir {
                Some(dir) => dir.clone(),
                None => parent(input),
            };
            if self.options.output_dir.is_none() {
                self.output_dir(out_dir.clone(), true);
            }
            let in_dir = parent(input);
            if !self.input_dirs.contains(&in_dir) {
                match fs::metadata(&in_dir) {
                    Ok(dir) => self.input_dir(in_dir, true, FileId::of_metadata(&dir)),
                    Err(e) => return self.fail(input, meta.len(), FileError::Read(e)),
                }
            }
            self.file(input, name, &out_dir, &meta, true);
        } else {
            self.skip(input, None, 0, Skip::Special);
        }
    }

    /// Walks the tree under `root`, depth first, each directory's entries in name order.
    fn tree(&mut self, root: &Path, meta: &Metadata) {
        let canonical_root = match fs::canonicalize(root) {
            Ok(path) => path,
            Err(e) => return self.fail(root, 0, FileError::Read(e)),
        };
        let out = match &self.options.output_dir {
            // `seal .` mirrors the current directory under its own name; `/` has none.
            Some(dir) => match root.file_name().or(canonical_root.file_name()) {
                Some(name) => dir.join(name),
                None => dir.clone(),
            },
            None => root.to_path_buf(),
        };
        if Some(id(meta)) == self.out_dir_id {
            return;
        }
        let mut stack = vec![Walk {
            dir: root.to_path_buf(),
            named: true,
            id: FileId::of_metadata(meta),
            out,
            ancestors: vec![id(meta)],
        }];
        while let Some(Walk {
            dir,
            named: by_path,
            id: dir_id,
            out,
            ancestors,
        }) = stack.pop()
        {
            self.input_dir(dir.clone(), by_path, dir_id);
            // Beside the inputs, the tree's own directory is one the operator named.
            let named = self.options.output_dir.is_none() && dir == root;
            self.output_dir(out.clone(), named);
            let mut entries = match read_sorted(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    self.fail(&dir, 0, FileError::Read(e));
                    continue;
                }
            };
            let mut subdirs = Vec::new();
            for (name, file_type) in entries.drain(..) {
                let path = dir.join(&name);
                let at = (canonical_root.as_path(), ancestors.as_slice());
                if let Some(meta) = self.entry(&path, &name, file_type, at, &out) {
                    let key = id(&meta);
                    if Some(key) == self.out_dir_id {
                        continue;
                    }
                    if ancestors.contains(&key) {
                        self.skip(&path, None, 0, Skip::SymlinkLoop);
                        continue;
                    }
                    let mut inner = ancestors.clone();
                    inner.push(key);
                    subdirs.push(Walk {
                        dir: path,
                        named: file_type.is_symlink(),
                        id: FileId::of_metadata(&meta),
                        out: out.join(&name),
                        ancestors: inner,
                    });
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
    }

    /// Plans one directory entry, in the directory whose `ancestors` (itself included) lie
    /// under `root`; returns the metadata of a directory to walk into. A link that is not
    /// followed is reported for what following it would do: [`Skip::Symlink`] only where
    /// it would help.
    fn entry(
        &mut self,
        path: &Path,
        name: &OsStr,
        file_type: FileType,
        (root, ancestors): (&Path, &[(u64, u64)]),
        out: &Path,
    ) -> Option<Metadata> {
        let meta = if file_type.is_symlink() {
            let follow = self.options.follow_symlinks;
            let target = fs::canonicalize(path).and_then(|target| {
                let meta = fs::metadata(&target)?;
                Ok((target, meta))
            });
            match target {
                Err(e) if follow => {
                    self.fail(path, 0, FileError::Read(e));
                    return None;
                }
                Ok((target, meta)) if follow && target.starts_with(root) => meta,
                not_followed => {
                    let skip = match not_followed {
                        Err(_) => Skip::SymlinkBroken,
                        Ok((target, _)) if !target.starts_with(root) => Skip::SymlinkOutside,
                        Ok((_, meta)) if meta.is_dir() && ancestors.contains(&id(&meta)) => {
                            Skip::SymlinkLoop
                        }
                        Ok(_) => Skip::Symlink,
                    };
                    self.skip(path, None, 0, skip);
                    return None;
                }
            }
        } else {
            match fs::symlink_metadata(path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.fail(path, 0, FileError::Read(e));
                    return None;
                }
            }
        };
        if meta.is_dir() {
            return Some(meta);
        }
        let file_type = meta.file_type();
        if file_type.is_fifo()
            || file_type.is_socket()
            || file_type.is_block_device()
            || file_type.is_char_device()
            || !meta.is_file()
        {
            self.skip(path, None, meta.len(), Skip::Special);
        } else {
            self.file(path, name, out, &meta, self.options.follow_symlinks);
        }
        None
    }

    /// Plans a regular file named `name` (`meta`: the file it is, a link followed), whose
    /// output goes in `out_dir`.
    fn file(&mut self, path: &Path, name: &OsStr, out_dir: &Path, meta: &Metadata, follow: bool) {
        let len = meta.len();
        if is_partial_name(name) {
            // Beside the inputs, the run removes these (when stale); in an input tree
            // mirrored elsewhere they are reported.
            if self.options.output_dir.is_some() {
                self.skip(path, None, len, Skip::Partial);
            }
            return;
        }
        let output_name = match output_name(self.options.direction, name) {
            Some(output_name) => output_name,
            None if is_signature(name) => return self.skip(path, None, len, Skip::Signature),
            None if is_rotation_record(name) => {
                return self.skip(path, None, len, Skip::RotationRecord)
            }
            None => return self.skip(path, None, len, Skip::NotAgeName),
        };
        let beside = self.options.output_dir.is_none();
        if self.options.direction == Direction::Seal && beside && is_signature(name) {
            return self.skip(path, None, len, Skip::Signature);
        }
        if self.options.direction == Direction::Seal && beside && is_rotation_record(name) {
            return self.skip(path, None, len, Skip::RotationRecord);
        }
        if self.options.direction == Direction::Seal
            && self.options.output_dir.is_none()
            && name.as_bytes().ends_with(b".age")
        {
            return self.skip(path, None, len, Skip::AgeName);
        }
        let output = out_dir.join(output_name);
        // Rotated in place: the output is the input.
        if self.options.direction == Direction::Rewrap {
            return self.plan.jobs.push(Job {
                source: path.to_path_buf(),
                output,
                len,
                follow,
            });
        }
        if !self.outputs.insert(output.clone()) {
            return self.skip(path, Some(output), len, Skip::DuplicateOutput);
        }
        if let Ok(existing) = output.symlink_metadata() {
            // The same file under another name (a hard link), or a link to it: writing the
            // output would destroy the input, `force` or not.
            let same = match existing.file_type().is_symlink() {
                true => fs::metadata(&output).is_ok_and(|target| id(&target) == id(meta)),
                false => id(&existing) == id(meta),
            };
            if same {
                let outcome = Outcome::Failed(FileError::OutputIsInput);
                return self.report(path, Some(output), len, outcome);
            }
            if !self.options.force {
                return self.skip(path, Some(output), len, Skip::OutputExists);
            }
        }
        self.plan.jobs.push(Job {
            source: path.to_path_buf(),
            output,
            len,
            follow,
        });
    }

    fn output_dir(&mut self, path: PathBuf, named: bool) {
        if self.dirs.insert(path.clone()) {
            self.plan.output_dirs.push(PlannedDir { path, named });
        }
    }

    fn input_dir(&mut self, path: PathBuf, named: bool, id: FileId) {
        if self.input_dirs.insert(path.clone()) {
            self.plan.input_dirs.push((PlannedDir { path, named }, id));
        }
    }

    fn skip(&mut self, path: &Path, output: Option<PathBuf>, bytes: u64, skip: Skip) {
        self.report(path, output, bytes, Outcome::Skipped(skip));
    }

    fn fail(&mut self, path: &Path, bytes: u64, error: FileError) {
        self.report(path, None, bytes, Outcome::Failed(error));
    }

    fn report(&mut self, path: &Path, output: Option<PathBuf>, bytes: u64, outcome: Outcome) {
        self.plan.left_out.push(Report {
            source: path.to_path_buf(),
            output,
            bytes,
            outcome,
            sender: None,
            sha256: None,
        });
    }
}

/// `NAME.age.sig`: the signature of a sealed file, as `seal --sign-with` writes it.
fn is_signature(name: &OsStr) -> bool {
    let suffix = crate::signing::sender::SIGNATURE_SUFFIX.as_bytes();
    name.as_bytes()
        .strip_suffix(suffix)
        .is_some_and(|sealed| sealed.ends_with(b".age"))
}

/// `NAME.age.rotated`: the rotation record of a rotated file ([`crate::rotate`]).
fn is_rotation_record(name: &OsStr) -> bool {
    let suffix = crate::rotate::SUFFIX.as_bytes();
    name.as_bytes()
        .strip_suffix(suffix)
        .is_some_and(|sealed| sealed.ends_with(b".age"))
}

/// `NAME` → `NAME.age` when sealing; `NAME.age` → `NAME` when unsealing, and itself when
/// rotating (`None` otherwise).
pub(super) fn output_name(direction: Direction, name: &OsStr) -> Option<OsString> {
    match direction {
        Direction::Seal => {
            let mut out = name.to_os_string();
            out.push(".age");
            Some(out)
        }
        Direction::Unseal => {
            let stem = name.as_bytes().strip_suffix(b".age")?;
            (!stem.is_empty()).then(|| OsStr::from_bytes(stem).to_os_string())
        }
        Direction::Rewrap => output_name(Direction::Unseal, name).map(|_| name.to_os_string()),
    }
}

/// A directory's entries with their types (not following links), sorted by name.
fn read_sorted(dir: &Path) -> io::Result<Vec<(OsString, FileType)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((entry.file_name(), entry.file_type()?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names() {
        let name = |d, n: &str| output_name(d, n.as_ref()).map(|s| s.into_string().unwrap());
        assert_eq!(name(Direction::Seal, "a.txt").as_deref(), Some("a.txt.age"));
        assert_eq!(
            name(Direction::Unseal, "a.txt.age").as_deref(),
            Some("a.txt")
        );
        assert_eq!(name(Direction::Unseal, "a.txt"), None);
        assert_eq!(name(Direction::Unseal, ".age"), None);
        let raw = OsStr::from_bytes(b"\xff.age");
        assert_eq!(
            output_name(Direction::Unseal, raw).unwrap().as_bytes(),
            b"\xff"
        );
    }

    fn names(plan: &Plan, root: &Path) -> Vec<String> {
        plan.jobs
            .iter()
            .map(|job| {
                let source = job.source.strip_prefix(root).unwrap().display();
                let output = job.output.strip_prefix(root).unwrap().display();
                format!("{source} -> {output}")
            })
            .collect()
    }

    #[test]
    fn a_tree_is_mirrored_under_the_output_directory_and_the_output_directory_is_not_walked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("in/sub")).unwrap();
        fs::write(root.join("in/b"), b"").unwrap();
        fs::write(root.join("in/a"), b"").unwrap();
        fs::write(root.join("in/sub/c"), b"").unwrap();
        fs::create_dir_all(root.join("in/out")).unwrap();
        fs::write(root.join("in/out/stale.age"), b"").unwrap();
        let mut options = Options::new(Direction::Seal);
        options.output_dir = Some(root.join("in/out"));
        let plan = plan(&[root.join("in")], &options);
        assert_eq!(
            names(&plan, root),
            [
                "in/a -> in/out/in/a.age",
                "in/b -> in/out/in/b.age",
                "in/sub/c -> in/out/in/sub/c.age"
            ]
        );
        assert!(plan.left_out.is_empty());
        let dirs: Vec<_> = plan
            .output_dirs
            .iter()
            .map(|d| (d.path.strip_prefix(root).unwrap(), d.named))
            .collect();
        assert_eq!(
            dirs,
            [
                (Path::new("in/out"), true),
                (Path::new("in/out/in"), false),
                (Path::new("in/out/in/sub"), false)
            ]
        );
    }

    #[test]
    fn sealing_beside_the_inputs_leaves_sealed_files_and_existing_outputs_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a"), b"").unwrap();
        fs::write(root.join("a.age"), b"").unwrap();
        fs::write(root.join("b"), b"").unwrap();
        let plan = plan(&[root.to_path_buf()], &Options::new(Direction::Seal));
        assert_eq!(names(&plan, root), ["b -> b.age"]);
        let skips: Vec<_> = plan
            .left_out
            .iter()
            .map(|r| match r.outcome {
                Outcome::Skipped(skip) => (r.source.strip_prefix(root).unwrap().to_owned(), skip),
                _ => panic!("{r:?}"),
            })
            .collect();
        assert_eq!(
            skips,
            [
                (PathBuf::from("a"), Skip::OutputExists),
                (PathBuf::from("a.age"), Skip::AgeName)
            ]
        );
    }

    #[test]
    fn followed_links_stay_inside_the_root_and_never_loop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("in/d")).unwrap();
        fs::write(root.join("in/d/f"), b"").unwrap();
        fs::write(root.join("secret"), b"").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("in/out-link")).unwrap();
        std::os::unix::fs::symlink("d/f", root.join("in/in-link")).unwrap();
        std::os::unix::fs::symlink("..", root.join("in/d/loop")).unwrap();
        std::os::unix::fs::symlink("d", root.join("in/a-dir-link")).unwrap();
        let mut options = Options::new(Direction::Seal);
        options.output_dir = Some(root.join("out"));
        options.follow_symlinks = true;
        let plan = plan(&[root.join("in")], &options);
        assert_eq!(
            names(&plan, root),
            [
                "in/in-link -> out/in/in-link.age",
                "in/a-dir-link/f -> out/in/a-dir-link/f.age",
                "in/d/f -> out/in/d/f.age",
            ]
        );
        let skips: Vec<_> = plan
            .left_out
            .iter()
            .map(|r| {
                let source = r.source.strip_prefix(root).unwrap().display();
                format!("{source}: {:?}", r.outcome)
            })
            .collect();
        assert_eq!(
            skips,
            [
                "in/out-link: Skipped(SymlinkOutside)",
                "in/a-dir-link/loop: Skipped(SymlinkLoop)",
                "in/d/loop: Skipped(SymlinkLoop)",
            ]
        );
    }
}

//! Reading a model directory from disk: which files it holds (under the
//! manifest path rules) and their digests, hashed in parallel.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use custody_registry::manifest::{FileEntry, ManifestPath, MAX_FILES};
use custody_registry::names::Digest;
use custody_standards::hash::Hash;
use indicatif::ProgressBar;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::progress::bar;

/// A regular file found under the directory.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Its path relative to the directory.
    pub path: ManifestPath,
    /// Where it is on disk.
    pub abs: PathBuf,
    /// Its size when listed.
    pub size: u64,
}

/// How symbolic links are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A link is an error: a published directory holds its own bytes, and a
    /// link could point anywhere at publish time and elsewhere at load time.
    Refuse,
    /// A link counts as what it points to (checking a Hugging Face cache
    /// snapshot, whose files are links into its blob store: a loader reads
    /// through them too).
    Follow,
}

/// Every regular file under `dir`, except those whose relative path is in
/// `skip`. Paths must obey the manifest rules; special files are refused;
/// empty directories are not listed (a manifest names files only).
pub fn scan(dir: &Path, links: Links, skip: &[&str]) -> Result<Vec<LocalFile>> {
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(dir.to_owned(), String::new())];
    let mut seen_dirs = HashSet::new();
    let root = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    seen_dirs.insert((root.dev(), root.ino()));
    while let Some((abs_dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&abs_dir).map_err(|e| Error::io(&abs_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&abs_dir, e))?;
            let abs = entry.path();
            let name = entry.file_name().into_string().map_err(|n| {
                Error::Usage(format!("{}: the file name {n:?} is not UTF-8", abs_dir.display()))
            })?;
            let rel = format!("{prefix}{name}");
            let mut meta = std::fs::symlink_metadata(&abs).map_err(|e| Error::io(&abs, e))?;
            if meta.file_type().is_symlink() {
                if links == Links::Refuse {
                    return Err(Error::Usage(format!(
                        "{rel}: symbolic links are refused in a published directory (copy the file in)"
                    )));
                }
                meta = std::fs::metadata(&abs).map_err(|e| Error::io(&abs, e))?;
            }
            if meta.is_dir() {
                if !seen_dirs.insert((meta.dev(), meta.ino())) {
                    return Err(Error::Usage(format!("{rel}: a directory loop")));
                }
                stack.push((abs, format!("{rel}/")));
            } else if meta.is_file() {
                if skip.contains(&rel.as_str()) {
                    continue;
                }
                let path = ManifestPath::new(&rel).map_err(|e| Error::Usage(e.to_string()))?;
                out.push(LocalFile { path, abs, size: meta.len() });
                if out.len() > MAX_FILES {
                    return Err(Error::Usage(format!("{}: more than {MAX_FILES} files", dir.display())));
                }
            } else {
                return Err(Error::Usage(format!("{rel}: not a regular file or directory")));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// SHA-256 and length of a file, streamed; `pb` advances by its bytes.
pub fn hash_path(path: &Path, pb: &ProgressBar) -> Result<(Digest, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
        pb.inc(n as u64);
    }
    Ok((Digest(Hash(h.finalize().into())), total))
}

/// Hashes every file on `jobs` threads, with one progress bar; a file
/// whose size changed since it was listed is an error.
pub fn hash_files(files: &[LocalFile], jobs: usize) -> Result<Vec<FileEntry>> {
    let pb = bar(files.iter().map(|f| f.size).sum(), "hashing", true);
    let out = parallel(files, jobs, |f| {
        let (digest, size) = hash_path(&f.abs, &pb)?;
        if size != f.size {
            return Err(Error::Usage(format!("{}: changed while it was read", f.path)));
        }
        Ok(FileEntry { path: f.path.clone(), size, digest })
    });
    pb.finish_and_clear();
    out
}

/// `f` over `items` on up to `jobs` threads, results in item order. The
/// first error stops the others from starting new items and is returned.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || failed.load(Ordering::Relaxed) {
                    break;
                }
                match f(&items[i]) {
                    Ok(r) => results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_bad_names_are_refused_and_files_listed_sorted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tok/sub")).unwrap();
        std::fs::create_dir_all(d.path().join("empty")).unwrap();
        std::fs::write(d.path().join("z.bin"), b"zz").unwrap();
        std::fs::write(d.path().join("tok/sub/a.txt"), b"a").unwrap();
        std::fs::write(d.path().join("config.json"), b"{}").unwrap();
        let listed = scan(d.path(), Links::Refuse, &[]).unwrap();
        let paths: Vec<&str> = listed.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["config.json", "tok/sub/a.txt", "z.bin"]);
        let skipped = scan(d.path(), Links::Refuse, &["z.bin"]).unwrap();
        assert_eq!(skipped.len(), 2);
        let hashed = hash_files(&listed, 2).unwrap();
        assert_eq!(hashed[2].digest, Digest(custody_standards::hash::sha256(b"zz")));
        assert_eq!(hashed[1].size, 1);

        std::os::unix::fs::symlink(d.path().join("z.bin"), d.path().join("link.bin")).unwrap();
        let e = scan(d.path(), Links::Refuse, &[]).unwrap_err();
        assert!(matches!(&e, Error::Usage(m) if m.contains("link.bin")), "{e}");
        assert_eq!(scan(d.path(), Links::Follow, &[]).unwrap().len(), 4);
        std::fs::remove_file(d.path().join("link.bin")).unwrap();

        std::os::unix::fs::symlink(d.path(), d.path().join("tok/loop")).unwrap();
        assert!(matches!(scan(d.path(), Links::Follow, &[]), Err(Error::Usage(m)) if m.contains("loop")));
        std::fs::remove_file(d.path().join("tok/loop")).unwrap();

        std::fs::write(d.path().join("bad\\name"), b"").unwrap();
        assert!(
            matches!(scan(d.path(), Links::Refuse, &[]), Err(Error::Usage(m)) if m.contains("backslash"))
        );
    }

    #[test]
    fn parallel_keeps_order_and_returns_the_error() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            parallel(&items, 3, |i| Ok(i * 2)).unwrap(),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
        let e = parallel(&items, 3, |i| if *i == 42 { Err(Error::Usage("boom".into())) } else { Ok(()) });
        assert!(matches!(e, Err(Error::Usage(m)) if m == "boom"));
    }
}

//! Model directory manifests: parsing never panics, and an accepted
//! manifest is its own canonical encoding with every path rule kept.
#![no_main]
use custody_registry::manifest::{Manifest, ManifestPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        assert_eq!(m.encode(), data);
        for f in m.files() {
            assert_eq!(ManifestPath::new(f.path.as_str()).as_ref(), Ok(&f.path));
        }
    }
});

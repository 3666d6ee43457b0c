//! The tree explains itself: every document and test file the code and the README cite is in the
//! repository (`docs/...`, `tests/...`), every section of `docs/onprem-api.md` cited exists, and
//! nothing cites the design notes the project was started from, which a clone does not have.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "compat" | "fuzz") {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The folder of the crate `file` belongs to (the nearest one above it with a `Cargo.toml`).
fn crate_of(root: &Path, file: &Path) -> PathBuf {
    let mut dir = file.parent().unwrap_or(root);
    while dir != root && !dir.join("Cargo.toml").is_file() {
        dir = dir.parent().unwrap_or(root);
    }
    dir.to_path_buf()
}

#[test]
fn every_cited_document_and_section_is_in_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap().map(Result::unwrap) {
        if entry.path().extension().is_some_and(|ext| ext == "md") {
            files.push(entry.path());
        }
    }
    for dir in ["src", "crates", "tests"] {
        sources(&root.join(dir), &mut files);
    }
    let onprem = std::fs::read_to_string(root.join("docs/onprem-api.md")).unwrap();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        if shown.ends_with("tests/api/docs.rs") {
            continue; // this file names what it looks for
        }
        // Cited documents of the tree exist.
        for (at, _) in text.match_indices("docs/") {
            let cited: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                .collect();
            let cited = cited.trim_end_matches('.');
            if cited.ends_with(".md") && !root.join(cited).is_file() {
                problems.push(format!("{shown} cites {cited}, which is not in the tree"));
            }
        }
        // Cited test files exist: from the root, or from the citing file's crate.
        let home = crate_of(root, file);
        for (at, _) in text.match_indices("tests/") {
            // Only a path that starts here (not the end of `crates/store/tests/...`).
            if text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
                continue;
            }
            let cited: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                .collect();
            if cited.ends_with(".rs")
                && !root.join(&cited).is_file()
                && !home.join(&cited).is_file()
            {
                problems.push(format!("{shown} cites {cited}, which is not in the tree"));
            }
        }
        // Outside documents are not cited.
        // Spelt in pieces, so this file does not cite them itself.
        let outside_docs =
            [concat!("design", ".md"), concat!("onprem-api", ".md"), concat!("style", ".md")];
        for outside in outside_docs {
            // A document of `docs/` names its siblings by their own names.
            if file.parent().is_some_and(|dir| dir.join(outside).is_file()) {
                continue;
            }
            for (at, _) in text.match_indices(outside) {
                if !text[..at].ends_with("docs/") {
                    problems.push(format!("{shown} cites {outside}, which a clone does not have"));
                }
            }
        }
        // Sections of docs/onprem-api.md cited exist.
        for (at, _) in text.match_indices("docs/onprem-api.md` section") {
            let rest = &text[at + "docs/onprem-api.md` section".len()..];
            let rest = rest.trim_start();
            let rest = rest.trim_start_matches(['/', '!']).trim_start();
            let section: String =
                rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let section = section.trim_end_matches('.');
            let heading = |level: &str| format!("\n{level} {section}");
            let found = onprem.contains(&format!("{}.", heading("##")))
                || onprem.contains(&format!("{} ", heading("###")));
            if !found {
                problems.push(format!("{shown} cites docs/onprem-api.md section {section}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

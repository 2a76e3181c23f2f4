//! Every relative link in `README.md` and `docs/*.md` resolves:
//!
//! - `[text](path)` and `[text](path#anchor)`, where the path has no scheme
//!   (`https:`, `mailto:`, ...), name a file or directory that exists,
//!   relative to the Markdown file;
//! - an anchor into a Markdown file (`#anchor` alone means the same file) is
//!   the anchor GitHub gives one of its headings: the heading's text
//!   lowercased, everything but letters, digits, `-`, `_` and spaces removed,
//!   spaces turned into `-`, and a repeated slug suffixed `-1`, `-2`, ...
//!
//! Links inside fenced code blocks and inline code spans are not links, and
//! headings inside fenced code blocks are not headings. Headings are ATX
//! headings (`## Title`); anchors are written as slugs, not percent-encoded.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

/// `README.md` and every `docs/*.md`.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let docs = root.join("docs");
    let mut pages: Vec<PathBuf> = fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("reading {}: {e}", docs.display()))
        .map(|entry| entry.expect("reading docs/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    let mut files = vec![root.join("README.md")];
    files.extend(pages);
    files
}

/// A fence line: its character, its length, and what follows it.
fn fence(line: &str) -> Option<(char, usize, &str)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let c = trimmed.chars().next().filter(|&c| matches!(c, '`' | '~'))?;
    let len = trimmed.chars().take_while(|&x| x == c).count();
    (len >= 3).then_some((c, len, &trimmed[len..]))
}

/// `text` with every line of a fenced code block (fences included) emptied,
/// so that line numbers stay what they were.
fn blank_fences(text: &str) -> String {
    let mut open: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for line in text.split('\n') {
        match (open, fence(line)) {
            (None, Some((c, len, info))) if !(c == '`' && info.contains('`')) => {
                open = Some((c, len));
                lines.push("");
            }
            (None, _) => lines.push(line),
            (Some((c, len)), Some((d, n, rest)))
                if d == c && n >= len && rest.trim().is_empty() =>
            {
                open = None;
                lines.push("");
            }
            (Some(_), _) => lines.push(""),
        }
    }
    lines.join("\n")
}

fn run_len(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .take_while(|&&c| c == chars[start])
        .count()
}

/// `text` with every inline code span blanked out (newlines kept).
fn blank_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.extend(&chars[i..i + 2]);
                i += 2;
            }
            '`' => {
                let run = run_len(&chars, i);
                // The span closes at the next run of exactly as many backticks.
                let mut k = i + run;
                let mut close = None;
                while k < chars.len() {
                    if chars[k] == '`' {
                        let n = run_len(&chars, k);
                        if n == run {
                            close = Some(k + n);
                            break;
                        }
                        k += n;
                    } else {
                        k += 1;
                    }
                }
                let end = close.unwrap_or(i + run);
                if close.is_some() {
                    out.extend(
                        chars[i..end]
                            .iter()
                            .map(|&c| if c == '\n' { '\n' } else { ' ' }),
                    );
                } else {
                    out.extend(&chars[i..end]);
                }
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// An inline link `[text](destination "title")` found in a slice of chars.
struct InlineLink {
    text: Range<usize>,
    destination: String,
    end: usize,
}

/// The inline link whose text opens with the `[` at `start`, if it is one.
fn inline_link(chars: &[char], start: usize) -> Option<InlineLink> {
    let mut depth = 0usize;
    let mut j = start;
    let close = loop {
        match chars.get(j)? {
            '\\' => j += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break j;
                }
            }
            _ => {}
        }
        j += 1;
    };
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let mut k = close + 2;
    while chars.get(k).is_some_and(|c| c.is_whitespace()) {
        k += 1;
    }
    let (destination, mut e): (String, usize) = if chars.get(k) == Some(&'<') {
        let len = chars[k + 1..].iter().position(|&c| c == '>')?;
        (chars[k + 1..k + 1 + len].iter().collect(), k + len + 2)
    } else {
        let mut end = k;
        let mut parens = 0usize;
        while let Some(&c) = chars.get(end) {
            if c.is_whitespace() || (c == ')' && parens == 0) {
                break;
            }
            match c {
                '(' => parens += 1,
                ')' => parens -= 1,
                _ => {}
            }
            end += 1;
        }
        (chars[k..end].iter().collect(), end)
    };
    // An optional title, then the closing parenthesis.
    while chars.get(e).is_some_and(|&c| c != ')') {
        e += 1;
    }
    if e >= chars.len() {
        return None;
    }
    Some(InlineLink {
        text: start + 1..close,
        destination,
        end: e + 1,
    })
}

/// The destination of a reference definition, `[label]: destination`.
fn reference_definition(line: &str) -> Option<String> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let (label, after) = trimmed.strip_prefix('[')?.split_once("]:")?;
    if label.is_empty() || label.contains(']') {
        return None;
    }
    let destination = after.split_whitespace().next()?;
    Some(
        destination
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
    )
}

struct Link {
    line: usize,
    destination: String,
}

/// Every link of a Markdown text, outside code, in order.
fn links(text: &str) -> Vec<Link> {
    let prose = blank_code_spans(&blank_fences(text));
    let mut found: Vec<Link> = prose
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            reference_definition(line).map(|destination| Link {
                line: n + 1,
                destination,
            })
        })
        .collect();
    let chars: Vec<char> = prose.chars().collect();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1) != Some(&'\n') => i += 1,
            '\n' => line += 1,
            '[' => {
                if let Some(link) = inline_link(&chars, i) {
                    found.push(Link {
                        line,
                        destination: link.destination,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    found.sort_by_key(|link| link.line);
    found
}

/// The text of an ATX heading line (`## Title ##` gives `Title`).
fn atx_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim();
    let open = text.trim_end_matches('#');
    Some(if open.is_empty() || open.ends_with([' ', '\t']) {
        open.trim_end()
    } else {
        text
    })
}

/// A heading's text as rendered: each link replaced by its text.
fn rendered(heading: &str) -> String {
    let chars: Vec<char> = heading.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let image = chars[i] == '!' && chars.get(i + 1) == Some(&'[');
        let start = if image { i + 1 } else { i };
        let link = if chars[start] == '[' {
            inline_link(&chars, start)
        } else {
            None
        };
        match link {
            Some(link) => {
                out.extend(&chars[link.text]);
                i = link.end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    rendered(heading)
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|&c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut found = BTreeSet::new();
    for line in blank_fences(text).lines() {
        let Some(heading) = atx_heading(line) else {
            continue;
        };
        let base = slug(heading);
        let count = seen.entry(base.clone()).or_insert(0);
        found.insert(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    found
}

fn has_scheme(destination: &str) -> bool {
    destination.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    })
}

/// The broken relative links of the Markdown file `file`, whose text is
/// `text`; `exists` tells whether a path exists, `read` gives another
/// Markdown file's text.
fn broken_links(
    file: &Path,
    text: &str,
    exists: impl Fn(&Path) -> bool,
    read: impl Fn(&Path) -> Option<String>,
) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for link in links(text) {
        if has_scheme(&link.destination) {
            continue;
        }
        let at = format!("{}:{}: ({})", file.display(), link.line, link.destination);
        let (path, anchor) = link
            .destination
            .split_once('#')
            .unwrap_or((link.destination.as_str(), ""));
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !path.is_empty() && !exists(&target) {
            problems.push(format!("{at}: {} does not exist", target.display()));
            continue;
        }
        if anchor.is_empty() || target.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let target_text = if path.is_empty() {
            Some(text.to_owned())
        } else {
            read(&target)
        };
        match target_text {
            Some(t) if anchors(&t).contains(anchor) => {}
            Some(_) => problems.push(format!(
                "{at}: {} has no heading with the anchor #{anchor}",
                target.display()
            )),
            None => problems.push(format!("{at}: {} cannot be read", target.display())),
        }
    }
    problems
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    assert!(files.len() > 1, "no docs/*.md under {}", root.display());
    let mut count = 0;
    let mut problems = Vec::new();
    for file in &files {
        let text =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        count += links(&text).len();
        problems.extend(broken_links(file, &text, Path::exists, |p| {
            fs::read_to_string(p).ok()
        }));
    }
    assert!(count > 0, "no links found in {files:?}");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let text = "# Title\n\n## Same\n\n## Same\n\n\
                See [ok](#title), [twice](#same-1), [there](other.md#there), [dir](docs),\n\
                [web](https://example.com/#x), [gone](missing.md), [no anchor](#nowhere),\n\
                and [not there](other.md#nowhere).\n\n\
                `[in code](#code-span)`\n\n```\n[fenced](#fenced)\n```\n";
    let readme = Path::new("/repo/README.md");
    let other = Path::new("/repo/other.md");
    let exists = |p: &Path| p == other || p == Path::new("/repo/docs");
    let read = |p: &Path| (p == other).then(|| "# There\n".to_owned());
    let problems = broken_links(readme, text, exists, read);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains(":8: (missing.md)"), "{}", problems[0]);
    assert!(problems[1].contains(":8: (#nowhere)"), "{}", problems[1]);
    assert!(
        problems[2].contains(":9: (other.md#nowhere)"),
        "{}",
        problems[2]
    );
}

#[test]
fn links_in_code_are_not_links() {
    let text = "[a](x.md) `[b](y.md)` ``[c](`z`)``\n```\n[d](w.md)\n```\n~~~md\n[e](v.md)\n~~~\n\
                [f](<u v.md> \"title\") [g](t.md#h) ![i](img.png)\n\n[ref]: r.md\n";
    let found: Vec<String> = links(text).into_iter().map(|l| l.destination).collect();
    assert_eq!(found, ["x.md", "u v.md", "t.md#h", "img.png", "r.md"]);
}

#[test]
fn headings_are_slugged_as_github_does() {
    let text = "# Distributor tiers (分销等级管理)\n\
                ## Webhooks: `POST /webhooks/{platform}/{store}`\n\
                ### Same\n### Same\n### Same\n\
                ```sh\n# not a heading\n```\n\
                ## Commission (返佣) ##\n\
                ## See [the rules](rules.md#x)\n\
                #hashtag\n";
    let want = [
        "commission-返佣",
        "distributor-tiers-分销等级管理",
        "same",
        "same-1",
        "same-2",
        "see-the-rules",
        "webhooks-post-webhooksplatformstore",
    ];
    assert_eq!(anchors(text), BTreeSet::from(want.map(String::from)));
}

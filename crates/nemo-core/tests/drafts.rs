//! Timeline summaries and diffs for a set of drafts, snapshot-tested.

use std::fmt::Write as _;

use nemo_core::draft::{diff, Draft};

const DRAFTS: &[(&str, &str)] = &[
    ("empty", r#"{}"#),
    ("no segments", r#"{"t":[{"tt":0,"sg":[]}]}"#),
    (
        "seed",
        r#"{"t":[{"tt":0,"sg":[{"n":"city timelapse","st":0,"d":10000}]},{"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":10000,"v":0.35}]},{"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}],"d":10000}"#,
    ),
    (
        "trimmed",
        r#"{"t":[{"tt":0,"sg":[{"n":"city timelapse","st":0,"d":8000}]},{"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":8000,"v":0.5}]},{"tt":7,"sg":[{"text":"Urban Dreams","st":0,"d":3000}]}],"d":8000}"#,
    ),
    (
        "retitled",
        r#"{"t":[{"tt":0,"sg":[{"n":"city timelapse","st":0,"d":8000}]},{"tt":1,"sg":[{"n":"Lo-fi","st":0,"d":8000,"v":0.5}]},{"tt":7,"sg":[{"text":"City Nights","st":0,"d":3000}]}],"d":8000}"#,
    ),
    (
        "slideshow",
        r#"{"t":[{"tt":0,"sg":[{"src":"https://cdn/p1.jpg","st":0,"d":3000},{"src":"https://cdn/p2.jpg","st":3000,"d":3000},{"name":"p3","start":6000,"end":9000}]},{"tt":1,"sg":[{"title":"Acoustic","volume":60}]},{"tt":7,"sg":[{"text":"Spring sale","st":0,"d":2000}]},{"tt":7,"sg":[{"content":"50% off","st":2000,"d":4000}]}],"d":9000,"m":{"width":1080,"height":1920}}"#,
    ),
    (
        "vertical",
        r#"{"t":[{"tt":0,"sg":[{"src":"https://cdn/p1.jpg","st":0,"d":3000},{"src":"https://cdn/p2.jpg","st":3000,"d":3000},{"name":"p3","start":6000,"end":9000}]}],"d":9000,"m":{"width":1920,"height":1080}}"#,
    ),
    (
        "odd keys",
        r#"{"t":[{"tt":"0","sg":[{"st":"0","d":"2500.5"},42,null]},{"tt":9,"sg":[{"label":"sticker"}]},{"sg":"nope"}],"d":"x"}"#,
    ),
];

#[test]
fn summaries() {
    let mut out = String::new();
    for (name, json) in DRAFTS {
        let d = Draft::parse(json).unwrap();
        writeln!(
            out,
            "{name}: {} [ready: {}]",
            d.timeline(),
            d.is_ready_for_export()
        )
        .unwrap();
    }
    insta::assert_snapshot!(out);
}

#[test]
fn diffs() {
    let mut out = String::new();
    let drafts: Vec<(&str, Draft)> = DRAFTS
        .iter()
        .map(|(n, j)| (*n, Draft::parse(j).unwrap()))
        .collect();
    writeln!(out, "(none) → seed: {}", diff(None, &drafts[2].1)).unwrap();
    for pair in drafts.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        writeln!(out, "{} → {}: {}", a.0, b.0, diff(Some(&a.1), &b.1)).unwrap();
    }
    insta::assert_snapshot!(out);
}

//! Intent routing: a user's message, its attachments and what the session
//! knows become an ordered plan of actions.
//!
//! The seeds' table (export / credits / status / upload words skip the agent,
//! everything else goes to it) is the starting point, in English and Chinese,
//! case-insensitively. The router is smarter than the table in four ways:
//! - a message can ask for several things: "download this video https://… in
//!   MP4 at the highest resolution" is *upload that URL, instruct the agent,
//!   export, download* — not "export" alone;
//! - command words are only commands when nothing else is asked: whatever is
//!   left after removing them and filler words goes to the agent;
//! - a command word is a command only when it is asked for: not negated in
//!   its clause ("don't export yet", "先不要导出"), not in quotes or the words
//!   of a title ("a title that says Download our app"); "the mp4" is the
//!   video being edited, "an mp4" a file asked for;
//! - asking to export with nothing to export gives a clear message instead of
//!   a render that would fail.

use std::fmt;

use crate::wire::FilePart;

/// What the user said and attached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInput {
    /// The message.
    pub text: String,
    /// Local files attached to it, already checked by
    /// [`file_part`](crate::api::file_part).
    pub files: Vec<FilePart>,
    /// URLs attached to it (in addition to those in the text).
    pub urls: Vec<String>,
}

impl UserInput {
    /// A message with no attachments.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// What the session knows when the message arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteContext {
    /// The draft has a track with segments (it can be exported).
    pub has_draft: bool,
}

/// One action of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Upload local files and media URLs.
    Upload {
        /// Local files.
        files: Vec<FilePart>,
        /// Media URLs.
        urls: Vec<String>,
    },
    /// Send the message to the agent (one `/run_sse`).
    Instruct(String),
    /// Show the credit balance.
    Credits,
    /// Show the timeline.
    ShowTimeline,
    /// Render the draft and wait for it.
    Export,
    /// Download the rendered file.
    Download,
}

/// Why a message cannot be carried out at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Export was asked for, with nothing on the timeline and nothing to add.
    NothingToExport,
    /// Upload was asked for, with nothing attached.
    NothingToUpload,
    /// The message was empty.
    Empty,
}

impl Refusal {
    /// What to tell the user.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NothingToExport => {
                "There is nothing to export yet: upload a clip or describe the video you want first."
            }
            Refusal::NothingToUpload => {
                "Nothing to upload: no file and no link is attached."
            }
            Refusal::Empty => "Say what you would like to make, or attach a file.",
        }
    }
}

/// The note added when a message speaks of media ("these clips") that is
/// neither attached nor on the timeline. Frontends may recognise it to say
/// how media is attached with them.
pub const NOTE_NO_MEDIA: &str =
    "The message speaks of media, but none is attached (nothing is uploaded yet).";

/// An ordered plan, plus notes for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The actions, in order.
    pub steps: Vec<Step>,
    /// Things to tell the user (tips).
    pub notes: Vec<String>,
    /// Set when nothing can be done: the message asks for something
    /// impossible right now. The steps are then empty.
    pub refusal: Option<Refusal>,
}

impl Plan {
    /// True when the plan sends a message to the agent.
    pub fn uses_agent(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Instruct(_)))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Upload { files, urls } => {
                let items: Vec<String> = files
                    .iter()
                    .map(|p| format!("file {}", p.path.display()))
                    .chain(urls.iter().map(|u| format!("url {u}")))
                    .collect();
                write!(f, "upload [{}]", items.join(", "))
            }
            Step::Instruct(text) => write!(f, "instruct {text:?}"),
            Step::Credits => f.write_str("credits"),
            Step::ShowTimeline => f.write_str("timeline"),
            Step::Export => f.write_str("export"),
            Step::Download => f.write_str("download"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            f.write_str("(nothing to do)")?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            write!(f, "{step}")?;
        }
        if let Some(r) = self.refusal {
            write!(f, "\n  refused: {}", r.message())?;
        }
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        Ok(())
    }
}

const EXPORT_WORDS: &[&str] = &[
    "send me the video",
    "send me the file",
    "send it to me",
    "give me the video",
    "give me the file",
    "export",
    "download",
    "render it",
    "导出",
    "下载",
    "渲染",
];
const CREDIT_WORDS: &[&str] = &["credits", "credit", "balance", "积分", "余额", "点数"];
const STATUS_WORDS: &[&str] = &[
    "show tracks",
    "show the tracks",
    "show the timeline",
    "show timeline",
    "status",
    "timeline",
    "状态",
    "时间线",
    "时间轴",
    "轨道",
];
const UPLOAD_WORDS: &[&str] = &["upload", "上传"];
/// Phrases that ask for a file at the end, without an export word (an
/// "mp4" asked for is found by [`asks_for_mp4`]).
const FILE_WORDS: &[&str] = &[
    "get back",
    "to device",
    "offline",
    "save it",
    "save the video",
    "save as",
    "保存",
    "成片",
];
/// Words that carry no instruction of their own.
const FILLER: &[&str] = &[
    "a",
    "about",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "can",
    "check",
    "could",
    "current",
    "do",
    "does",
    "file",
    "files",
    "for",
    "get",
    "give",
    "have",
    "how",
    "i",
    "i'm",
    "is",
    "it",
    "its",
    "it's",
    "just",
    "left",
    "let",
    "let's",
    "many",
    "me",
    "much",
    "my",
    "now",
    "of",
    "ok",
    "okay",
    "please",
    "project",
    "remaining",
    "see",
    "show",
    "so",
    "the",
    "then",
    "these",
    "this",
    "those",
    "to",
    "us",
    "video",
    "videos",
    "view",
    "want",
    "what",
    "what's",
    "whats",
    "would",
    "you",
    "your",
    "clip",
    "clips",
    "thanks",
    "thank",
    "there",
    "here",
    "result",
    "final",
    "done",
    "again",
    "same",
    "one",
    "we",
    "our",
    "hey",
    "hi",
    "at",
    "in",
    "on",
    "with",
    "from",
    "into",
    "by",
    "or",
    "查看",
    "看看",
    "一下",
    "我的",
    "我",
    "请",
    "帮我",
    "帮忙",
    "视频",
    "文件",
    "现在",
    "还有",
    "多少",
    "吧",
    "呢",
    "吗",
    "的",
    "了",
    "把",
    "给",
    "一个",
    "这个",
    "查询",
];

/// Hosts whose pages are videos: a link to them is media to upload.
const VIDEO_HOSTS: &[&str] = &[
    "youtube.com",
    "youtu.be",
    "vimeo.com",
    "tiktok.com",
    "bilibili.com",
    "b23.tv",
    "twitter.com",
    "x.com",
    "instagram.com",
    "facebook.com",
    "fb.watch",
    "dailymotion.com",
    "twitch.tv",
    "douyin.com",
    "kuaishou.com",
    "reddit.com",
    "streamable.com",
];

/// True for a URL that points at media (a video host or a media file), as
/// opposed to an article or web page the agent should read.
pub(crate) fn is_media_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..host_end].rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    let path = rest[host_end..].split(['?', '#']).next().unwrap_or("");
    let on_video_host = VIDEO_HOSTS
        .iter()
        .any(|h| host == *h || host.ends_with(&format!(".{h}")));
    on_video_host || crate::api::content_type_for(path).is_some()
}

/// Finds `http://` and `https://` URLs in text.
pub fn find_urls(text: &str) -> Vec<String> {
    url_spans(text)
        .into_iter()
        .map(|r| text[r].to_owned())
        .collect()
}

/// Where the URLs are, in one pass over the text (a message with thousands
/// of links still routes in linear time).
fn url_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    for (start, _) in lower.match_indices("http") {
        if start < from {
            continue;
        }
        let rest = &lower[start + 4..];
        if !(rest.starts_with("://") || rest.starts_with("s://")) {
            continue;
        }
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || "<>\"'`，。、）】》".contains(c))
            .map_or(text.len(), |i| start + i);
        let url = text[start..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
        if url.len() > "https://".len() && url.contains('.') {
            spans.push(start..start + url.len());
        }
        from = end;
    }
    spans
}

/// Where `phrase` stands in `text` as words of their own (an ASCII phrase
/// may end a word's stem: "exported", "downloading", "credits").
fn phrase_at<'a>(text: &'a str, phrase: &'a str) -> impl Iterator<Item = usize> + 'a {
    let bytes = text.as_bytes();
    text.match_indices(phrase).map(|(i, _)| i).filter(move |&i| {
        if !phrase.is_ascii() {
            return true;
        }
        let before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let j = i + phrase.len();
        let after = j >= bytes.len() || !bytes[j].is_ascii_alphanumeric() || phrase.starts_with(' ') || phrase.ends_with(' ')
            || matches!(&text[j..], s if s.starts_with("ed") || s.starts_with("ing") || s.starts_with('s'));
        before && after
    })
}

fn contains_phrase(text: &str, phrase: &str) -> bool {
    phrase_at(text, phrase).next().is_some()
}

fn has_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| contains_phrase(text, w))
}

/// True when one of `words` is asked for in `asked` (the message as
/// [`asked_text`] leaves it): not negated within its clause ("don't export
/// yet", "先不要导出").
fn asks_any(asked: &str, words: &[&str]) -> bool {
    words
        .iter()
        .any(|w| phrase_at(asked, w).any(|i| !negated(&asked[..i])))
}

/// Where a clause ends: what comes after it is asked for on its own
/// ("add music, then export").
fn ends_clause(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | '!' | '?' | ':' | '\n' | '，' | '。' | '；' | '！' | '？' | '：' | '、'
    )
}

/// True when the words right before a command word (in its clause) say not
/// to: "don't export", "do not download", "no need to export", "I don't
/// want you to render it", "without exporting", "cancel the export" — a
/// negation attached to it, past only words such as "yet", "to", "you",
/// "want", "just"; one further away is about something else ("don't change
/// anything, just export it", "not bad, export it"). In Chinese a
/// 不/别/勿/没/未/莫/无 right before it, past words such as 先, 要, 用, 需, 急着
/// ("先不要导出", "别急着下载", "无需导出"), but not 要不 ("how about": "要不导出吧").
fn negated(before: &str) -> bool {
    let clause = before.rsplit(ends_clause).next().unwrap_or_default();
    // "add music with no fade and export": an "and" asks anew.
    let clause = [" and ", " then ", " but ", "然后"]
        .iter()
        .filter_map(|w| clause.rfind(w).map(|i| &clause[i + w.len()..]))
        .min_by_key(|rest| rest.len())
        .unwrap_or(clause);
    let mut cjk = clause
        .trim_end()
        .chars()
        .rev()
        .skip_while(|c| "先要用需必暂时急着就还再的你们我想现在马上直接立刻".contains(*c));
    if cjk.next().is_some_and(|c| "不别勿没未莫无".contains(c)) {
        return cjk.next() != Some('要');
    }
    const PAST: &[&str] = &[
        "yet", "to", "the", "it", "this", "that", "you", "me", "us", "i", "we", "please", "just",
        "want", "wanna", "need", "be", "going", "gonna", "even", "ever", "any", "an", "a", "try",
        "bother", "start", "begin", "think", "should", "would", "could", "go", "dare", "of",
        "about", "give", "send", "get",
    ];
    const NOT: &[&str] = &[
        "not", "dont", "never", "no", "without", "instead", "cannot", "nor", "stop", "skip",
        "avoid", "cancel", "off",
    ];
    for word in clause
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .rev()
    {
        if word.ends_with("n't") || NOT.contains(&word) {
            return true;
        }
        // "actually", "immediately", "really": past them too.
        if !PAST.contains(&word) && !word.ends_with("ly") {
            return false;
        }
    }
    false
}

/// The message as far as it asks for something (lower case, URLs out): the
/// words in quotes and the words of a title ("a title that says Download
/// our app", "change the title to Export Day", "caption: Download now", up
/// to the end of the clause or an "and", "then", "so", "please") blanked,
/// so that they are not read as commands. A quote never closed blanks
/// nothing (`2" bigger`).
fn asked_text(lower: &str) -> String {
    let lower = lower.replace(['’', '‘', '`'], "'");
    let chars: Vec<char> = lower.chars().collect();
    let mut out = String::with_capacity(lower.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let word_start = i == 0 || chars[i - 1].is_whitespace() || "([{".contains(chars[i - 1]);
        // An elision is no quote: '90s, 'n', 'em, 'cause, 'til.
        let elision = {
            let after: String = chars[i + 1..].iter().take(5).collect();
            after.starts_with(|n: char| n.is_ascii_digit())
                || ["n'", "em", "cause", "til", "tis"]
                    .iter()
                    .any(|e| after.starts_with(e))
        };
        let single = c == '\'' && word_start && !elision;
        let double = "\"“「『«".contains(c);
        let closes = |j: usize| {
            let d = chars[j];
            if single {
                d == '\''
                    && !chars[j - 1].is_whitespace()
                    && chars.get(j + 1).is_none_or(|n| !n.is_alphanumeric())
            } else {
                "\"”」』»".contains(d)
            }
        };
        // A title in single quotes is short: an apostrophe far away ("the
        // kids' video") closes nothing.
        let end = (single || double)
            .then(|| (i + 1..chars.len()).find(|&j| closes(j)))
            .flatten()
            .filter(|&end| {
                !single
                    || chars[i + 1..end]
                        .iter()
                        .filter(|c| c.is_whitespace())
                        .count()
                        < 8
            });
        match end {
            Some(end) => {
                out.push(c);
                out.extend(std::iter::repeat_n(' ', end - i - 1));
                out.push(chars[end]);
                i = end + 1;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    // A title's words: after one of these, to the end of the clause or a
    // word that goes on asking ("and", "then", "before", 然后, 再, 后…).
    // An ASCII marker starts a word ("subtitle to" is no "title to").
    for says in [
        "says ",
        "saying ",
        "reads ",
        "reading ",
        "titled ",
        "called ",
        "named ",
        "the words ",
        "title to ",
        "caption to ",
        "title: ",
        "caption: ",
        "text: ",
        "写着",
        "标题改成",
        "标题改为",
        "字幕改成",
        "字幕改为",
        "文字改成",
        "文字改为",
    ] {
        let mut from = 0;
        while let Some(at) = out[from..].find(says) {
            let at = from + at;
            let start = at + says.len();
            from = start;
            if says.is_ascii()
                && out[..at]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            let rest = &out[start..];
            let end = [
                " and ", " then ", " so ", " now ", " please ", " when ", " before ", " after ",
                "然后", "再", "后", "并", "就",
            ]
            .iter()
            .filter_map(|w| rest.find(w))
            .chain(rest.find(ends_clause))
            .min()
            .unwrap_or(rest.len());
            let blank = " ".repeat(rest[..end].len());
            out.replace_range(start..start + end, &blank);
            from = start + end;
        }
    }
    out
}

/// True when an MP4 is asked for ("give me an mp4", "into a 1080p MP4",
/// "in MP4 format", "send me the mp4"), not the video named ("crop the
/// mp4", "this mp4") nor a file name ("intro.mp4").
fn asks_for_mp4(asked: &str) -> bool {
    const NAMING: &[&str] = &[
        "the", "this", "that", "my", "your", "our", "these", "those", "each", "every", "its",
        "their", "his", "her",
    ];
    const ASKING: &[&str] = &[
        "me", "give", "send", "want", "need", "have", "save", "get", "download", "share", "email",
    ];
    phrase_at(asked, "mp4").any(|i| {
        let before = &asked[..i];
        let mut words = before
            .split_whitespace()
            .rev()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()));
        let previous = words.next().unwrap_or_default();
        // "send me the mp4 (please, when done)" asks for it; "I want the
        // mp4 to start at 0:05" edits it.
        let after = asked[i + 3..].trim_start_matches('s');
        let clause_ends = after
            .split(ends_clause)
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .is_none_or(|w| {
                [
                    "please", "now", "when", "once", "back", "file", "asap", "thanks", "thank",
                    "too", "and", "then",
                ]
                .contains(&w)
            });
        let named = NAMING.contains(&previous)
            && !(words.next().is_some_and(|w| ASKING.contains(&w)) && clause_ends);
        !before.ends_with(['.', '_', '/', '-']) && !named && !negated(before)
    })
}

fn strip_words(mut text: String, words: &[&str]) -> String {
    for w in words {
        if !w.is_ascii() {
            text = text.replace(w, " ");
        }
    }
    text
}

/// True when something is left to tell the agent once command words, URLs
/// and filler are taken out.
fn has_instruction(lower_without_urls: &str) -> bool {
    let mut text = strip_words(
        lower_without_urls.to_owned(),
        &[
            EXPORT_WORDS,
            CREDIT_WORDS,
            STATUS_WORDS,
            UPLOAD_WORDS,
            FILLER,
        ]
        .concat(),
    );
    for phrase in EXPORT_WORDS
        .iter()
        .chain(STATUS_WORDS)
        .filter(|w| w.contains(' '))
    {
        text = text.replace(phrase, " ");
    }
    let commands: Vec<&str> = [EXPORT_WORDS, CREDIT_WORDS, STATUS_WORDS, UPLOAD_WORDS].concat();
    let meaningful = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .filter(|w| {
            let stem = w
                .strip_suffix("ed")
                .or_else(|| w.strip_suffix("ing"))
                .or_else(|| w.strip_suffix('s'))
                .unwrap_or(w);
            !FILLER.contains(w) && !commands.contains(w) && !commands.contains(&stem)
        })
        .map(|w| w.chars().count())
        .sum::<usize>();
    meaningful >= 2
}

/// Routes a message to a plan.
pub fn route(input: &UserInput, ctx: RouteContext) -> Plan {
    let text = input.text.trim();
    let spans = url_spans(text);
    let mut inline_urls: Vec<String> = spans.iter().map(|r| text[r.clone()].to_owned()).collect();
    let mut without_urls = String::with_capacity(text.len());
    let mut last = 0;
    for r in &spans {
        without_urls.push_str(&text[last..r.start]);
        without_urls.push(' ');
        last = r.end;
    }
    without_urls.push_str(&text[last..]);
    let lower = without_urls.to_lowercase();
    let lower = lower.trim();

    let page_urls: Vec<String> = inline_urls
        .iter()
        .filter(|u| !is_media_url(u))
        .cloned()
        .collect();
    inline_urls.retain(|u| is_media_url(u));
    let mut media_urls = inline_urls;
    for u in &input.urls {
        if !media_urls.contains(u) {
            media_urls.push(u.clone());
        }
    }
    let has_attachments = !input.files.is_empty() || !media_urls.is_empty();

    let asked = asked_text(lower);
    let wants_export = asks_any(&asked, EXPORT_WORDS);
    let wants_credits = asks_any(&asked, CREDIT_WORDS);
    let wants_status = asks_any(&asked, STATUS_WORDS);
    let wants_upload = asks_any(&asked, UPLOAD_WORDS);
    let wants_file = asks_any(&asked, FILE_WORDS) || asks_for_mp4(&asked);
    let instruction = has_instruction(lower) || !page_urls.is_empty();
    let any_command = wants_export || wants_credits || wants_status || wants_upload;

    let mut plan = Plan::default();
    if has_attachments {
        plan.steps.push(Step::Upload {
            files: input.files.clone(),
            urls: media_urls,
        });
    } else if wants_upload && !instruction {
        plan.refusal = Some(Refusal::NothingToUpload);
    }
    let instruct = instruction || (!any_command && !has_attachments && !text.is_empty());
    if instruct {
        plan.steps.push(Step::Instruct(text.to_owned()));
        let refers_to_media = has_any(
            lower,
            &[
                "these clips",
                "these photos",
                "these images",
                "this video",
                "this clip",
                "this file",
                "these files",
                "这些",
                "这个视频",
            ],
        );
        if refers_to_media && !has_attachments && !ctx.has_draft {
            plan.notes.push(NOTE_NO_MEDIA.into());
        }
    }
    if wants_credits {
        plan.steps.push(Step::Credits);
    }
    if wants_status && !wants_export {
        plan.steps.push(Step::ShowTimeline);
    }
    let export = wants_export || (wants_file && (instruct || has_attachments));
    if export {
        if ctx.has_draft || instruct || has_attachments {
            plan.steps.push(Step::Export);
            plan.steps.push(Step::Download);
        } else {
            plan.refusal = Some(Refusal::NothingToExport);
        }
    }
    if plan.steps.is_empty() && plan.refusal.is_none() {
        plan.refusal = Some(Refusal::Empty);
    }
    if plan.refusal.is_some() {
        plan.steps.clear();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, has_draft: bool) -> String {
        route(&UserInput::text(text), RouteContext { has_draft }).to_string()
    }

    #[test]
    fn table_words_skip_the_agent() {
        assert_eq!(r("export", true), "export → download");
        assert_eq!(r("导出", true), "export → download");
        assert_eq!(r("Send me the video", true), "export → download");
        assert_eq!(r("credits", false), "credits");
        assert_eq!(r("余额", false), "credits");
        assert_eq!(r("how many credits do I have left?", false), "credits");
        assert_eq!(r("STATUS", false), "timeline");
        assert_eq!(r("show tracks", false), "timeline");
        assert_eq!(r("状态", false), "timeline");
    }

    #[test]
    fn export_without_a_draft_is_a_message() {
        let plan = route(&UserInput::text("导出"), RouteContext::default());
        assert!(plan.steps.is_empty());
        assert_eq!(plan.refusal, Some(Refusal::NothingToExport));
    }

    #[test]
    fn download_a_url_means_upload_instruct_export() {
        assert_eq!(
            r("download this video https://www.youtube.com/watch?v=abc in MP4 at the highest resolution", false),
            "upload [url https://www.youtube.com/watch?v=abc] → instruct \"download this video https://www.youtube.com/watch?v=abc in MP4 at the highest resolution\" → export → download"
        );
        assert_eq!(
            r("download https://youtu.be/abc", false),
            "upload [url https://youtu.be/abc] → export → download"
        );
    }

    #[test]
    fn edits_go_to_the_agent() {
        assert_eq!(
            r("add lo-fi BGM at 35%", true),
            "instruct \"add lo-fi BGM at 35%\""
        );
        assert_eq!(r("加一段背景音乐", true), "instruct \"加一段背景音乐\"");
        assert_eq!(
            r("add a title and export", true),
            "instruct \"add a title and export\" → export → download"
        );
    }

    /// An export word is a command only when the user asks for it: not
    /// negated, not inside quotes, not the words of a title; "the mp4" is
    /// the video being edited, not a file asked for.
    #[test]
    fn export_words_that_ask_for_no_export() {
        for text in [
            "don't export yet, first add lo-fi music at 35%",
            "do not download anything, just tell me what music you used",
            "add a title that says Download our app",
            "add the title \"Export done\" at the start",
            "add the title “Download now” at the start",
            "crop the mp4 to vertical 9:16",
            "I don't want you to render it, add subtitles",
            "no need to export, add subtitles",
            "cancel the export and add a fade",
            "add the title 'Download now' at the start",
            "change the title to Download Our App",
            "add a caption: Download our app",
            "put the words Download Today at the end",
            "don`t export yet, add music",
            "无需导出，加字幕",
            "don't actually export it",
            "don't immediately export",
            "do not try to export",
            "don't bother to export",
            "don't start exporting",
            "I don't think we should export yet",
            "no need to actually export",
            "don't even think of exporting",
            "Don't you dare export",
            "don't send me the mp4 yet",
            "I want the mp4 to start at 0:05",
            "I need the mp4 to be vertical",
            "have the mp4 start with the title",
            "show me the mp4 length",
            "get the mp4 trimmed to 10s and add music",
            "我不想导出，加字幕",
            "不要现在导出，加字幕",
            "不要直接导出，加字幕",
            "先不要导出，加一段背景音乐",
            "别急着下载，把标题改成红色",
            "加一个标题「导出成功」",
        ] {
            let plan = route(&UserInput::text(text), RouteContext { has_draft: true });
            assert_eq!(plan.to_string(), format!("instruct {text:?}"), "{text}");
        }
        for text in [
            "add a title that says Summer and export it",
            "don't forget to export when you're done adding music",
            "add music, then export",
            "before exporting, add a fade at the end",
            "Make the title bigger before you export it",
            "Don't change anything just export it",
            "don't touch it just export",
            "no more edits just export",
            "not bad export it",
            "Looks good no changes needed export it",
            "without changing anything export it",
            "If it's not too long export it",
            "we're done no need for music export it",
            "要不导出吧",
            "I'd say it's ready export it",
            "add a caption that says Thanks so export it",
            "add the title “Summer\" and export it",
            "加标题“夏天\"，然后导出",
            "make the text 2\" bigger and export",
            "give me the mp4",
            "send me the mp4",
            "I want the mp4",
            "can I have the mp4 please",
            "save the mp4",
            "add lo-fi music and send me the mp4 when done",
            "把分辨率改成1080p导出",
            "改成竖屏导出",
            "改成竖屏再导出",
            "把标题改成红色后导出",
            "改成mp4格式导出",
            "move the subtitle to the bottom export it",
            "add some text to the end export it",
            "add a subtitle to the intro before exporting",
            "Change the title to Summer before you export it",
            "add a '90s filter and export the kids' video",
            "add '80s vibes and export it for my parents' anniversary",
            "can you export it? don't add music",
            "export it, no music",
            "no, export it",
            "never mind, export",
            "不用加音乐，直接导出",
            "导出吧，不要水印",
            "没问题，导出",
            "add music with no fade and export",
            "no music please and then render it",
            "add lo-fi music and give me an mp4",
            "turn it into a 1080p MP4 with a fade",
            "加一段背景音乐，然后导出",
            "字幕不错，导出",
        ] {
            let plan = route(&UserInput::text(text), RouteContext { has_draft: true });
            assert!(
                plan.to_string().ends_with("export → download"),
                "{text}: {plan}"
            );
        }
    }

    #[test]
    fn attached_files_are_uploaded() {
        let plan = route(
            &UserInput {
                text: String::new(),
                files: vec![crate::api::file_part("a.mp4", 1).unwrap()],
                urls: vec![],
            },
            RouteContext::default(),
        );
        assert_eq!(plan.to_string(), "upload [file a.mp4]");
    }

    #[test]
    fn article_links_go_to_the_agent_not_upload() {
        assert_eq!(
            r(
                "generate a video from this article link: https://example.com/blog-post",
                false
            ),
            "instruct \"generate a video from this article link: https://example.com/blog-post\""
        );
    }

    #[test]
    fn urls_are_found_and_classified() {
        assert_eq!(
            find_urls("see https://a.com/x.mp4, and (http://b.org/p)."),
            vec!["https://a.com/x.mp4", "http://b.org/p"]
        );
        assert!(is_media_url("https://cdn.example.com/v/clip.MOV?sig=1"));
        assert!(is_media_url("https://m.youtube.com/watch?v=1"));
        assert!(!is_media_url("https://example.com/blog-post"));
        assert!(!is_media_url("https://notyoutube.com/x"));
    }
}

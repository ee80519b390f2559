//! The scripted agent: reads a message, decides the edits, words the reply.
//!
//! It understands the four flavours' requests (save an online video as MP4,
//! combine clips and photos with music, generate from an article or YouTube
//! link, process an uploaded file) and the edits: background music (name and
//! volume), titles and text overlays (quoted text), transitions, trims and
//! resolution changes, in English and Chinese. It also generates a video from
//! a description alone ("generate a 10 second city timelapse", "做一个城市延时视频")
//! in two stages, as the real service does: the raw video first, then
//! post-production adds music, a title and effects on its own.

use serde_json::Value;

use crate::timeline::{self, EditOp, MediaKind, Removal};

/// Media the session holds, from uploads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionMedia {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) kind: MediaKind,
    pub(crate) duration_ms: u64,
}

/// What the agent knows when a message arrives.
pub(crate) struct TurnInput<'a> {
    pub(crate) message: &'a str,
    /// The draft as it will be once pending edits land.
    pub(crate) draft: Option<&'a Value>,
    pub(crate) media: &'a [SessionMedia],
    /// `X-Skill-Source`.
    pub(crate) source: Option<&'a str>,
    /// The session's language (`en`, `zh`, …).
    pub(crate) language: &'a str,
    pub(crate) base_url: &'a str,
}

/// How much a turn costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnKind {
    /// Talk only: free.
    Chat,
    /// Edits: `edit_cost`.
    Edit,
    /// A generated or composed video: `generate_cost`.
    Generate,
}

/// What the agent decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) kind: TurnKind,
    /// Start from an empty draft before applying `ops` (new project).
    pub(crate) fresh: bool,
    pub(crate) ops: Vec<EditOp>,
    /// The reply without any GUI hint.
    pub(crate) reply: String,
    pub(crate) chinese: bool,
    /// Simulated seconds the tools take.
    pub(crate) work_seconds: f64,
    /// A two-stage generation from a description, when this is one.
    pub(crate) generation: Option<Generation>,
}

/// A video generated from a description, in two stages: `ops[..raw_ops]`
/// make the raw video; the rest is post-production the agent adds on its own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Generation {
    /// What the user described.
    pub(crate) prompt: String,
    /// The clip's length.
    pub(crate) duration_ms: u64,
    /// How many of the plan's ops make the raw video.
    pub(crate) raw_ops: usize,
    /// Where the raw clip is.
    pub(crate) video_url: String,
}

const MEDIA_EXTS: &[&str] = &[
    "mp4", "mov", "avi", "webm", "mkv", "jpg", "jpeg", "png", "gif", "webp", "mp3", "wav", "m4a",
    "aac",
];

const MUSIC_STYLES: &[(&str, &str)] = &[
    ("lo-fi", "Lo-fi"),
    ("lofi", "Lo-fi"),
    ("lo fi", "Lo-fi"),
    ("jazz", "Jazz"),
    ("爵士", "Jazz"),
    ("piano", "Piano"),
    ("钢琴", "Piano"),
    ("epic", "Epic"),
    ("cinematic", "Cinematic"),
    ("upbeat", "Upbeat"),
    ("欢快", "Upbeat"),
    ("chill", "Chill"),
    ("ambient", "Ambient"),
    ("rock", "Rock"),
    ("摇滚", "Rock"),
    ("classical", "Classical"),
    ("古典", "Classical"),
    ("acoustic", "Acoustic"),
    ("hip hop", "Hip hop"),
    ("hip-hop", "Hip hop"),
    ("electronic", "Electronic"),
    ("电子", "Electronic"),
    ("轻音乐", "Soft"),
];

fn has_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// True when the text has CJK ideographs.
pub(crate) fn is_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// URLs in the message.
pub(crate) fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("http://").or_else(|| rest.find("https://")) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '"' | '\'' | '<' | '>' | '“' | '”' | '，' | '。' | ')' | '」'
                    )
            })
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';', '!', '?']);
        out.push(url.to_owned());
        rest = &tail[end..];
    }
    out
}

/// The extension of a URL's or file's last path segment, lower case.
pub(crate) fn extension(name: &str) -> Option<String> {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    let last = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = last.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 5).then(|| ext.to_ascii_lowercase())
}

/// A readable name from a URL: its file stem, or its host's last words.
pub(crate) fn name_from_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let without_scheme = path.split_once("://").map_or(path, |(_, r)| r);
    let mut parts = without_scheme.split('/').filter(|p| !p.is_empty());
    let host = parts.next().unwrap_or("video");
    let last = parts.next_back();
    let stem = match last {
        Some(l) => l.rsplit_once('.').map_or(l, |(s, _)| s),
        None => host,
    };
    let cleaned = stem.replace(['-', '_', '+'], " ");
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "watch" {
        "online video".into()
    } else {
        cleaned.chars().take(60).collect()
    }
}

fn is_video_page(url: &str) -> bool {
    let u = url.to_ascii_lowercase();
    has_any(
        &u,
        &[
            "youtube.com",
            "youtu.be",
            "vimeo.com",
            "bilibili.com",
            "tiktok.com",
            "dailymotion.com",
        ],
    )
}

/// Text between quote pairs: "…", “…”, 「…」, 『…』, 《…》.
pub(crate) fn quoted(text: &str) -> Vec<String> {
    let pairs = [
        ('"', '"'),
        ('“', '”'),
        ('「', '」'),
        ('『', '』'),
        ('《', '》'),
    ];
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if let Some((_, close)) = pairs.iter().find(|(open, _)| *open == chars[i]) {
            if let Some(len) = chars[i + 1..].iter().position(|c| c == close) {
                let s: String = chars[i + 1..i + 1 + len].iter().collect();
                let s = s.trim().to_owned();
                if !s.is_empty() && !s.starts_with("http") {
                    out.push(s);
                }
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Numbers in the text with what follows each (lower case, spaces skipped).
fn numbers(text: &str) -> Vec<(f64, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let n: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let after: String = chars[j..(j + 8).min(chars.len())].iter().collect();
            if let Ok(v) = n.trim_end_matches('.').parse::<f64>() {
                out.push((v, after.to_lowercase()));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn seconds_in(text: &str) -> Option<f64> {
    numbers(text).into_iter().find_map(|(v, after)| {
        let unit_s = after.starts_with('s') || after.starts_with("秒");
        let unit_m = after.starts_with("min") || after.starts_with("分钟");
        if unit_m {
            Some(v * 60.0)
        } else if unit_s && !after.starts_with("st") {
            Some(v)
        } else {
            None
        }
    })
}

fn volume_in(text: &str) -> Option<f64> {
    let nums = numbers(text);
    if let Some((v, _)) = nums.iter().find(|(_, after)| after.starts_with('%')) {
        return Some((v / 100.0).clamp(0.0, 1.0));
    }
    if text.contains("volume") || text.contains("音量") {
        if let Some((v, _)) = nums.iter().find(|(v, _)| *v <= 1.0) {
            return Some(*v);
        }
    }
    None
}

fn resolution_in(text: &str) -> Option<(u32, u32)> {
    // Explicit WxH first.
    for (v, after) in numbers(text) {
        if let Some(rest) = after.strip_prefix('x').or_else(|| after.strip_prefix('×')) {
            let h: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let (Ok(h), true) = (h.parse::<u32>(), (16.0..=8192.0).contains(&v)) {
                if (16..=8192).contains(&h) {
                    return Some((v as u32, h));
                }
            }
        }
    }
    let vertical = has_any(
        text,
        &[
            "vertical", "portrait", "9:16", "竖屏", "竖版", "tiktok", "reels", "shorts",
        ],
    );
    if vertical {
        return Some((1080, 1920));
    }
    if has_any(text, &["square", "1:1", "方形"]) {
        return Some((1080, 1080));
    }
    if has_any(text, &["4k", "2160p", "uhd"]) {
        return Some((3840, 2160));
    }
    if text.contains("720p") {
        return Some((1280, 720));
    }
    if has_any(
        text,
        &[
            "1080p",
            "full hd",
            "landscape",
            "横屏",
            "16:9",
            "highest",
            "最高",
        ],
    ) {
        return Some((1920, 1080));
    }
    None
}

fn music_in(text: &str) -> Option<&'static str> {
    MUSIC_STYLES
        .iter()
        .find(|(k, _)| text.contains(k))
        .map(|(_, v)| *v)
}

fn stock_music_url(base: &str, name: &str) -> String {
    format!(
        "{base}/cdn/stock/music/{}.mp3",
        name.to_ascii_lowercase().replace(' ', "-")
    )
}

/// FNV-1a 64: stable hashes for names and URLs.
pub(crate) fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn pct(v: f64) -> String {
    format!("{}", (v * 100.0).round() as i64)
}

fn secs(ms: u64) -> String {
    nemo_core::draft::seconds(ms as f64)
}

/// Decides what to do with a message.
pub(crate) fn understand(input: &TurnInput<'_>) -> Plan {
    let raw = input.message;
    let text = raw.to_lowercase();
    let zh = is_chinese(raw) || (input.language.starts_with("zh") && !raw.is_ascii());
    let zh = zh || (input.language.starts_with("zh") && raw.trim().is_empty());
    let links = urls(raw);
    let quotes = quoted(raw);
    let mut ops = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut kind = TurnKind::Edit;
    let mut fresh = false;
    let mut work = 4.0;
    let has_draft = input.draft.is_some_and(|d| timeline::total_ms(d) > 0);

    let wants_music = has_any(
        &text,
        &[
            "music",
            "bgm",
            "song",
            "soundtrack",
            "背景音乐",
            "配乐",
            "音乐",
        ],
    );
    let wants_text = has_any(
        &text,
        &[
            "title", "text", "caption", "subtitle", "overlay", "headline", "标题", "字幕", "文字",
            "文本",
        ],
    );
    let wants_transition = has_any(
        &text,
        &["transition", "转场", "过渡", "crossfade", "dissolve"],
    );
    let wants_trim = has_any(
        &text,
        &[
            "trim", "cut", "shorten", "shorter", "剪", "裁剪", "缩短", "截取",
        ],
    );
    let wants_combine = has_any(
        &text,
        &[
            "combine",
            "merge",
            "compile",
            "montage",
            "slideshow",
            "join",
            "合成",
            "拼接",
            "合并",
            "混剪",
        ],
    );
    let wants_save = has_any(
        &text,
        &[
            "save", "download", "convert", "mp4", "offline", "保存", "下载", "转换", "转成",
        ],
    );
    let resolution = resolution_in(&text);

    // Keep or strip what post-production added.
    if has_draft && links.is_empty() {
        if let Some(plan) = strip_or_keep(&text, zh) {
            return plan;
        }
    }

    // A description alone: generate a video from it, in two stages.
    if links.is_empty() && !wants_combine && wants_generation(&text) {
        return generate(input, raw, &text, zh, &quotes, wants_music);
    }

    // Links: save a media file or a video page, or generate from an article.
    for url in &links {
        let ext = extension(url);
        let direct = ext.as_deref().is_some_and(|e| MEDIA_EXTS.contains(&e));
        let name = name_from_url(url);
        if direct || (is_video_page(url) && wants_save) {
            let kind_of = ext
                .as_deref()
                .and_then(MediaKind::from_ext)
                .unwrap_or(MediaKind::Video);
            let duration_ms = if kind_of == MediaKind::Image {
                3000
            } else {
                10_000 + (fnv64(url.as_bytes()) % 50) * 1000
            };
            ops.push(EditOp::AddMedia {
                name: name.clone(),
                src: url.clone(),
                kind: kind_of,
                duration_ms,
            });
            if wants_save && resolution.is_none() {
                ops.push(EditOp::Canvas {
                    width: 1920,
                    height: 1080,
                });
            }
            work += 12.0;
            lines.push(if zh {
                format!("已获取视频「{name}」并添加到时间线，将以最高可用分辨率保存为 MP4。")
            } else {
                format!("I fetched \"{name}\" and put it on the timeline; it will be saved as an MP4 at the highest available resolution.")
            });
        } else {
            // Generate a video from the page.
            kind = TurnKind::Generate;
            fresh = true;
            work += 45.0;
            let title = quotes.first().cloned().unwrap_or_else(|| capitalise(&name));
            ops.push(EditOp::Title {
                title: title.clone(),
            });
            let scenes = 3 + (fnv64(url.as_bytes()) % 3) as usize;
            let h = fnv64(url.as_bytes());
            for i in 1..=scenes {
                ops.push(EditOp::AddMedia {
                    name: format!("{title} — scene {i}"),
                    src: format!("{}/cdn/generated/{h:016x}/scene_{i}.mp4", input.base_url),
                    kind: MediaKind::Video,
                    duration_ms: 8000,
                });
            }
            ops.push(EditOp::Transition {
                kind: "fade".into(),
            });
            if !wants_music {
                let music = "Upbeat";
                ops.push(EditOp::Bgm {
                    name: music.into(),
                    src: stock_music_url(input.base_url, music),
                    volume: 0.3,
                });
            }
            if !wants_text || quotes.is_empty() {
                ops.push(EditOp::Text {
                    text: title.clone(),
                    start_ms: 0,
                    duration_ms: 3000,
                });
            }
            lines.push(if zh {
                format!("视频已生成！我根据链接内容制作了一个 {scenes} 个场景的视频「{title}」，配有转场、背景音乐和标题。")
            } else {
                format!("Your video is ready! I turned the link into a {scenes}-scene video, \"{title}\", with transitions, background music and a title.")
            });
        }
    }

    // Combine uploaded clips and photos into a video.
    if wants_combine && links.is_empty() {
        if input.media.iter().all(|m| m.kind == MediaKind::Audio) && !has_draft {
            return chat(
                zh,
                if zh {
                    "请先上传你的视频片段和照片，然后我会把它们合成为一个视频。"
                } else {
                    "Please upload your clips and photos first, then I'll combine them into one video."
                },
            );
        }
        kind = TurnKind::Generate;
        work += 30.0;
        if !wants_transition {
            ops.push(EditOp::Transition {
                kind: "fade".into(),
            });
        }
        let audio = input
            .media
            .iter()
            .rev()
            .find(|m| m.kind == MediaKind::Audio);
        if !wants_music {
            let (name, src) = match audio {
                Some(a) => (a.name.clone(), a.url.clone()),
                None => (
                    "Upbeat".to_owned(),
                    stock_music_url(input.base_url, "Upbeat"),
                ),
            };
            ops.push(EditOp::Bgm {
                name,
                src,
                volume: 0.6,
            });
        }
        let clips = input
            .media
            .iter()
            .filter(|m| m.kind != MediaKind::Audio)
            .count();
        lines.push(if zh {
            format!("已将 {clips} 个片段合成为一个视频，并添加了转场和背景音乐。")
        } else {
            format!("I combined your {clips} clips and photos into one video with transitions and music.")
        });
    }

    if wants_music {
        let name = music_in(&text)
            .map(str::to_owned)
            .or_else(|| (!wants_text).then(|| quotes.first().cloned()).flatten())
            .or_else(|| {
                input
                    .media
                    .iter()
                    .rev()
                    .find(|m| m.kind == MediaKind::Audio)
                    .map(|m| m.name.clone())
            })
            .unwrap_or_else(|| "Upbeat".into());
        let src = input
            .media
            .iter()
            .find(|m| m.kind == MediaKind::Audio && m.name == name)
            .map_or_else(|| stock_music_url(input.base_url, &name), |m| m.url.clone());
        let volume = volume_in(&text).unwrap_or(0.5);
        ops.push(EditOp::Bgm {
            name: name.clone(),
            src,
            volume,
        });
        lines.push(if zh {
            format!("已添加背景音乐「{name}」，音量 {}%。", pct(volume))
        } else {
            format!(
                "Added the background music \"{name}\" at {}% volume.",
                pct(volume)
            )
        });
    }

    if wants_transition {
        let t = ["fade", "dissolve", "slide", "wipe", "zoom"]
            .into_iter()
            .find(|t| text.contains(t))
            .unwrap_or(if text.contains("淡") {
                "fade"
            } else {
                "crossfade"
            });
        ops.push(EditOp::Transition { kind: t.into() });
        lines.push(if zh {
            format!("已在片段之间添加 {t} 转场。")
        } else {
            format!("Applied {t} transitions between the clips.")
        });
    }

    if wants_text && !(kind == TurnKind::Generate && !links.is_empty() && quotes.is_empty()) {
        let texts = if quotes.is_empty() {
            vec![if zh {
                "我的视频".to_owned()
            } else {
                "My Video".to_owned()
            }]
        } else {
            quotes.clone()
        };
        let existing = input
            .draft
            .map_or(0, |d| timeline::segment_count(d, timeline::TEXT))
            as u64;
        for (i, t) in texts.iter().enumerate() {
            let start_ms = (existing + i as u64) * 3000;
            ops.push(EditOp::Text {
                text: t.clone(),
                start_ms,
                duration_ms: 3000,
            });
            let end = start_ms + 3000;
            lines.push(if zh {
                format!("已添加文字「{t}」（{}-{}秒）。", secs(start_ms), secs(end))
            } else {
                format!(
                    "Added the text overlay \"{t}\" ({}-{}s).",
                    secs(start_ms),
                    secs(end)
                )
            });
        }
    }

    if wants_trim {
        if let Some(s) = seconds_in(&text) {
            let ms = (s * 1000.0).round() as u64;
            ops.push(EditOp::Trim { ms });
            lines.push(if zh {
                format!("已将视频剪辑到 {} 秒。", secs(ms))
            } else {
                format!("Trimmed the video to {} seconds.", secs(ms))
            });
        }
    } else if wants_combine {
        if let Some(s) = seconds_in(&text) {
            ops.push(EditOp::Trim {
                ms: (s * 1000.0).round() as u64,
            });
        }
    }

    if let Some((width, height)) = resolution {
        if !ops.iter().any(|o| matches!(o, EditOp::Canvas { .. })) {
            ops.push(EditOp::Canvas { width, height });
            lines.push(if zh {
                format!("已将分辨率改为 {width}x{height}。")
            } else {
                format!("Changed the resolution to {width}x{height}.")
            });
        }
    }

    // A file to process with no other instruction: tidy it up.
    if ops.is_empty()
        && !input.media.is_empty()
        && has_any(
            &text,
            &[
                "process", "edit", "polish", "enhance", "处理", "编辑", "剪辑", "优化",
            ],
        )
    {
        ops.push(EditOp::Transition {
            kind: "fade".into(),
        });
        let name = "Chill";
        ops.push(EditOp::Bgm {
            name: name.into(),
            src: stock_music_url(input.base_url, name),
            volume: 0.4,
        });
        work += 15.0;
        lines.push(if zh {
            "已处理你的文件：添加了转场和轻柔的背景音乐。".to_owned()
        } else {
            "I processed your file: added smooth transitions and a soft background track."
                .to_owned()
        });
    }

    if ops.is_empty() {
        // A request to save without a link, when media is already there.
        if wants_save && has_draft {
            return chat(
                zh,
                if zh {
                    "你的视频已准备好，可以导出为 MP4。"
                } else {
                    "Your video is ready to be exported as an MP4."
                },
            );
        }
        let reply = if zh {
            "我可以帮你编辑视频：添加背景音乐、标题和文字、转场，剪辑时长或修改分辨率。你想怎么做？"
        } else if has_draft || !input.media.is_empty() {
            "I can add background music, titles and text overlays, transitions, trim the video or change its resolution. What would you like to do?"
        } else {
            "Send me a link or upload your clips and photos, and tell me what video you want to make."
        };
        return chat(zh, reply);
    }
    if input.source == Some("video-download-online") && kind == TurnKind::Edit && !links.is_empty()
    {
        work += 10.0;
    }
    Plan {
        kind,
        fresh,
        ops,
        reply: lines.join(" "),
        chinese: zh,
        work_seconds: work,
        generation: None,
    }
}

fn chat(zh: bool, reply: &str) -> Plan {
    Plan {
        kind: TurnKind::Chat,
        fresh: false,
        ops: Vec::new(),
        reply: reply.to_owned(),
        chinese: zh,
        work_seconds: 0.0,
        generation: None,
    }
}

/// "remove the music", "去掉标题", "keep them": the answers to the choice
/// offered after post-production.
fn strip_or_keep(text: &str, zh: bool) -> Option<Plan> {
    let remove = has_any(
        text,
        &[
            "remove",
            "delete",
            "strip",
            "take out",
            "get rid of",
            "去掉",
            "删除",
            "移除",
            "不要",
        ],
    );
    if !remove {
        let keep = has_any(
            text,
            &[
                "keep them",
                "keep it",
                "keep everything",
                "keep all",
                "保留",
            ],
        );
        return keep.then(|| {
            chat(
                zh,
                if zh {
                    "好的，全部保留。"
                } else {
                    "Keeping everything as it is."
                },
            )
        });
    }
    let mut ops = Vec::new();
    let mut what = Vec::new();
    for (words, removal, en, cn) in [
        (
            &["music", "bgm", "soundtrack", "song", "音乐", "配乐"][..],
            Removal::Music,
            "the music",
            "音乐",
        ),
        (
            &["title", "text", "caption", "标题", "文字", "字幕"][..],
            Removal::Titles,
            "the title",
            "标题",
        ),
        (
            &[
                "effect", "filter", "colour", "color", "grade", "效果", "调色", "滤镜",
            ][..],
            Removal::Effects,
            "the effects",
            "效果",
        ),
    ] {
        if has_any(text, words) {
            ops.push(EditOp::Remove { what: removal });
            what.push(if zh { cn } else { en });
        }
    }
    if ops.is_empty() {
        return None;
    }
    Some(Plan {
        kind: TurnKind::Edit,
        fresh: false,
        ops,
        reply: if zh {
            format!("已去掉{}。", what.join("、"))
        } else {
            format!("Removed {}.", what.join(" and "))
        },
        chinese: zh,
        work_seconds: 4.0,
        generation: None,
    })
}

/// "generate …", "做一个…视频", or "make/create a … video|clip|timelapse".
fn wants_generation(text: &str) -> bool {
    if has_any(
        text,
        &[
            "generate",
            "生成",
            "做一个",
            "做个",
            "制作一个",
            "来一个",
            "text to video",
        ],
    ) {
        return true;
    }
    let verb = has_any(
        text,
        &[
            "make a ",
            "make an ",
            "create a ",
            "create an ",
            "produce a ",
            "render a ",
        ],
    );
    let noun = has_any(
        text,
        &[
            "video",
            "clip",
            "timelapse",
            "time-lapse",
            "footage",
            "animation",
            "film",
            "movie",
            "视频",
            "短片",
            "延时",
            "动画",
        ],
    );
    verb && noun
}

/// What the description is about: the message without the request's words.
fn subject(raw: &str, zh: bool) -> String {
    if zh {
        let mut s = raw.to_owned();
        for w in [
            "帮我",
            "请",
            "做一个",
            "做个",
            "制作一个",
            "制作",
            "生成一个",
            "生成",
            "来一个",
            "一段",
            "一个",
            "视频",
            "短片",
            "的",
            "。",
            "！",
        ] {
            s = s.replace(w, "");
        }
        let s: String = s
            .chars()
            .filter(|c| !c.is_ascii_digit() && *c != '秒' && !c.is_whitespace())
            .collect();
        return if s.is_empty() {
            "我的视频".into()
        } else {
            s
        };
    }
    const DROP: &[&str] = &[
        "please", "generate", "create", "make", "produce", "render", "me", "a", "an", "the",
        "video", "clip", "of", "showing", "about", "second", "seconds", "sec", "secs", "long",
        "minute", "minutes", "with", "and", "music", "title", "for", "short",
    ];
    let words: Vec<&str> = raw
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '"' | '“' | '”'))
        .filter(|w| !w.is_empty())
        .filter(|w| !w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|w| !DROP.contains(&w.to_lowercase().as_str()))
        .collect();
    if words.is_empty() {
        "my video".into()
    } else {
        words.join(" ").chars().take(60).collect()
    }
}

fn title_case(s: &str) -> String {
    s.split(' ').map(capitalise).collect::<Vec<_>>().join(" ")
}

/// Generation from a description: the raw clip (`generate_video`), then
/// post-production the agent adds on its own — music, a title, effects.
fn generate(
    input: &TurnInput<'_>,
    raw: &str,
    text: &str,
    zh: bool,
    quotes: &[String],
    wants_music: bool,
) -> Plan {
    let about = subject(raw, zh);
    let title = quotes.first().cloned().unwrap_or_else(|| {
        if zh {
            about.clone()
        } else {
            title_case(&about)
        }
    });
    let seconds = seconds_in(text).unwrap_or(10.0).clamp(3.0, 60.0);
    let duration_ms = (seconds * 1000.0).round() as u64;
    let h = fnv64(raw.as_bytes());
    let video_url = format!("{}/cdn/generated/{h:016x}/raw.mp4", input.base_url);
    let mut ops = vec![
        EditOp::Title {
            title: title.clone(),
        },
        EditOp::AddMedia {
            name: about.clone(),
            src: video_url.clone(),
            kind: MediaKind::Video,
            duration_ms,
        },
    ];
    let raw_ops = ops.len();
    let music = if wants_music {
        music_in(text).unwrap_or("Cinematic")
    } else {
        ["Cinematic", "Ambient", "Upbeat", "Lo-fi"][(h % 4) as usize]
    };
    ops.push(EditOp::Bgm {
        name: music.into(),
        src: stock_music_url(input.base_url, music),
        volume: 0.3,
    });
    ops.push(EditOp::Text {
        text: title.clone(),
        start_ms: 0,
        duration_ms: 3000.min(duration_ms),
    });
    ops.push(EditOp::Effect {
        name: "color_grade".into(),
    });
    let secs_text = secs(duration_ms);
    let reply = if zh {
        format!(
            "视频「{title}」已生成：{secs_text} 秒的原始视频，后期制作已自动添加背景音乐「{music}」（30%）、标题和调色效果。要保留这些，还是去掉音乐、标题或效果？"
        )
    } else {
        format!(
            "Your video \"{title}\" is ready: a {secs_text}-second clip, and post-production added the music \"{music}\" at 30%, the title and a colour grade. Keep them, or shall I remove the music, the title or the effects?"
        )
    };
    Plan {
        kind: TurnKind::Generate,
        fresh: true,
        ops,
        reply,
        chinese: zh,
        work_seconds: 0.0,
        generation: Some(Generation {
            prompt: raw.trim().to_owned(),
            duration_ms,
            raw_ops,
            video_url,
        }),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// GUI hints the real backend appends (clients must translate them).
pub(crate) fn gui_hint(zh: bool, pick: usize) -> &'static str {
    const EN: &[&str] = &[
        "Click the Export button to download your MP4.",
        "Open the timeline panel to preview the result.",
        "You can drag and drop the clips on the timeline to reorder them.",
        "Preview it in the timeline, then click Export when you're happy.",
        "Check your account billing page to see your remaining credits.",
    ];
    const ZH: &[&str] = &[
        "点击导出按钮即可下载视频。",
        "打开时间线面板可以预览效果。",
        "可以拖拽时间线上的片段来调整顺序。",
        "满意后点击导出。",
    ];
    if zh {
        ZH[pick % ZH.len()]
    } else {
        EN[pick % EN.len()]
    }
}

/// The trailing line some turns end with.
pub(crate) fn temporary_issue(zh: bool) -> &'static str {
    if zh {
        "我遇到了一个临时问题，请稍后再试。"
    } else {
        "I encountered a temporary issue. Please try again in a moment."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(message: &str, media: &[SessionMedia], draft: Option<&Value>) -> Plan {
        understand(&TurnInput {
            message,
            draft,
            media,
            source: None,
            language: "en",
            base_url: "http://127.0.0.1:1",
        })
    }

    #[test]
    fn reads_edits() {
        let d = timeline::empty_draft("x");
        let p = plan(
            "add lo-fi music at 35% and the title \"Urban Dreams\"",
            &[],
            Some(&d),
        );
        assert_eq!(p.kind, TurnKind::Edit);
        assert!(p.ops.iter().any(|o| matches!(o, EditOp::Bgm { name, volume, .. } if name == "Lo-fi" && (*volume - 0.35).abs() < 1e-9)));
        assert!(p
            .ops
            .iter()
            .any(|o| matches!(o, EditOp::Text { text, .. } if text == "Urban Dreams")));
        let p = plan(
            "trim to 8 seconds and make it vertical 1080x1920",
            &[],
            Some(&d),
        );
        assert!(p.ops.contains(&EditOp::Trim { ms: 8000 }));
        assert!(p.ops.contains(&EditOp::Canvas {
            width: 1080,
            height: 1920
        }));
        let p = plan(
            "加背景音乐，爵士，音量35%，标题「城市之梦」，剪到8秒，竖屏",
            &[],
            Some(&d),
        );
        assert!(p.chinese);
        assert!(p.ops.contains(&EditOp::Trim { ms: 8000 }));
        assert!(p.ops.contains(&EditOp::Canvas {
            width: 1080,
            height: 1920
        }));
        assert!(p
            .ops
            .iter()
            .any(|o| matches!(o, EditOp::Text { text, .. } if text == "城市之梦")));
        assert!(p
            .ops
            .iter()
            .any(|o| matches!(o, EditOp::Bgm { name, .. } if name == "Jazz")));
        assert!(p.reply.contains("背景音乐"));
    }

    #[test]
    fn reads_links() {
        let p = plan(
            "save https://example.com/v/city-timelapse.mp4 as MP4",
            &[],
            None,
        );
        assert!(matches!(&p.ops[0], EditOp::AddMedia { name, .. } if name == "city timelapse"));
        let p = plan(
            "make a video from https://blog.example.com/posts/rust-in-2026",
            &[],
            None,
        );
        assert_eq!(p.kind, TurnKind::Generate);
        assert!(p.fresh);
        let p = plan(
            "download https://www.youtube.com/watch?v=abc in mp4",
            &[],
            None,
        );
        assert_eq!(p.kind, TurnKind::Edit);
        assert_eq!(
            urls("see https://a.b/c.mp4, then"),
            vec!["https://a.b/c.mp4"]
        );
    }

    #[test]
    fn generates_from_a_description_in_two_stages() {
        for (message, title, ms) in [
            (
                "generate a 10 second city timelapse",
                "City Timelapse",
                10_000,
            ),
            ("做一个城市延时视频", "城市延时", 10_000),
            (
                "make a 6s video of ocean waves at sunset",
                "Ocean Waves At Sunset",
                6000,
            ),
        ] {
            let p = plan(message, &[], None);
            assert_eq!(p.kind, TurnKind::Generate, "{message}");
            assert!(p.fresh);
            let g = p.generation.as_ref().expect("two stages");
            assert_eq!(g.duration_ms, ms, "{message}");
            assert!(
                matches!(&p.ops[0], EditOp::Title { title: t } if t == title),
                "{message}: {:?}",
                p.ops[0]
            );
            assert!(p.ops[..g.raw_ops]
                .iter()
                .any(|o| matches!(o, EditOp::AddMedia { .. })));
            let post = &p.ops[g.raw_ops..];
            assert!(
                post.iter().any(|o| matches!(o, EditOp::Bgm { .. })),
                "{message}"
            );
            assert!(
                post.iter().any(|o| matches!(o, EditOp::Text { .. })),
                "{message}"
            );
            assert!(
                post.iter().any(|o| matches!(o, EditOp::Effect { .. })),
                "{message}"
            );
        }
        // Keep or strip what post-production added.
        let mut d = timeline::empty_draft("x");
        let mut id = 0;
        for op in &plan("generate a 10 second city timelapse", &[], None).ops {
            timeline::apply(&mut d, op, &mut id);
        }
        let p = plan("remove the music and the effects", &[], Some(&d));
        assert_eq!(
            p.ops,
            vec![
                EditOp::Remove {
                    what: Removal::Music
                },
                EditOp::Remove {
                    what: Removal::Effects
                }
            ]
        );
        for op in &p.ops {
            timeline::apply(&mut d, op, &mut id);
        }
        assert_eq!(timeline::segment_count(&d, timeline::AUDIO), 0);
        assert_eq!(timeline::segment_count(&d, timeline::TEXT), 1);
        assert!(!d.to_string().contains("\"fx\""));
        assert_eq!(plan("keep them", &[], Some(&d)).kind, TurnKind::Chat);
        assert_eq!(
            plan("去掉标题", &[], Some(&d)).ops,
            vec![EditOp::Remove {
                what: Removal::Titles
            }]
        );
        // Edits of an existing video are not generations.
        let d = timeline::empty_draft("x");
        assert!(plan("make the video shorter, trim to 5s", &[], Some(&d))
            .generation
            .is_none());
    }

    #[test]
    fn chat_when_nothing_to_do() {
        assert_eq!(plan("hello there", &[], None).kind, TurnKind::Chat);
    }
}

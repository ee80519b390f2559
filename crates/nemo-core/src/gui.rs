//! GUI translation: the backend answers as if the user sat in front of the
//! web editor ("click the Export button", "点击导出", "open the timeline
//! panel"). Those instructions are removed from what the user reads and turned
//! into actions a frontend can run or offer; the rest of the text is kept.

use serde::Serialize;

/// Something the backend told the user to do in a GUI, as an API action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuiAction {
    /// "click Export" / "Export button" / "点击导出": run the export workflow.
    Export,
    /// "open the … panel" / "打开" / "preview in timeline": show the timeline.
    ShowTimeline,
    /// "check your account / billing": show the credit balance.
    ShowCredits,
    /// "drag/drop" / "拖拽": describe the change in words; it goes to the agent.
    DescribeEdit,
}

impl GuiAction {
    /// How a conversation offers the action (what to say); a frontend may
    /// add its own way (a command, a button).
    pub fn hint(self) -> &'static str {
        match self {
            GuiAction::Export => "ready to export: say \"export\"",
            GuiAction::ShowTimeline => "see the timeline: say \"status\"",
            GuiAction::ShowCredits => "see your balance: say \"credits\"",
            GuiAction::DescribeEdit => "describe the change in words and it will be applied",
        }
    }
}

/// Text with its GUI instructions taken out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Translated {
    /// What the user reads.
    pub text: String,
    /// The actions found, in order, without repeats.
    pub actions: Vec<GuiAction>,
}

const CLICK_WORDS: &[&str] = &[
    "click",
    "tap",
    "press",
    "hit the",
    "select the",
    "点击",
    "单击",
    "按下",
];
const EXPORT_WORDS: &[&str] = &["export", "download", "render", "导出", "下载"];

fn has_word(hay: &str, word: &str) -> bool {
    // ASCII words need boundaries on both sides ("clicks" of a metronome and
    // a "dragon" sticker are not GUI instructions), allowing an `-ing` or
    // `-ed` ending ("dragging", "exported"); CJK words are matched as is.
    if !word.is_ascii() {
        return hay.contains(word);
    }
    let bytes = hay.as_bytes();
    hay.match_indices(word).any(|(start, _)| {
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let rest = &hay[start + word.len()..];
        let ending = ["ing", "ed", ""]
            .iter()
            .find(|e| rest.starts_with(**e))
            .map_or(0, |e| e.len());
        let after = rest.as_bytes().get(ending).copied();
        let after_ok = word.ends_with(' ') || after.is_none_or(|b| !b.is_ascii_alphanumeric());
        before_ok && after_ok
    })
}

fn any(hay: &str, words: &[&str]) -> bool {
    words.iter().any(|w| has_word(hay, w))
}

/// Which action a sentence asks the user to perform in a GUI, if it does.
fn gui_instruction(sentence: &str) -> Option<Option<GuiAction>> {
    let s = sentence.to_lowercase();
    let clicks = any(&s, CLICK_WORDS);
    if (clicks && any(&s, EXPORT_WORDS))
        || any(
            &s,
            &["export button", "download button", "导出按钮", "下载按钮"],
        )
    {
        return Some(Some(GuiAction::Export));
    }
    if any(
        &s,
        &[
            "preview in the timeline",
            "preview in timeline",
            "preview it in the timeline",
            "在时间线",
            "时间轴中预览",
            "时间线中预览",
        ],
    ) || (any(&s, &["open the", "open your", "打开"])
        && any(
            &s,
            &[
                "panel",
                "timeline",
                "editor",
                "tab",
                "面板",
                "时间线",
                "时间轴",
                "编辑器",
            ],
        ))
    {
        return Some(Some(GuiAction::ShowTimeline));
    }
    if any(
        &s,
        &[
            "check your account",
            "billing page",
            "account page",
            "check your credits",
            "top up in",
            "账户页面",
            "查看账户",
        ],
    ) {
        return Some(Some(GuiAction::ShowCredits));
    }
    if any(&s, &["drag", "drop it", "drop the", "拖拽", "拖动"]) {
        return Some(Some(GuiAction::DescribeEdit));
    }
    if clicks && any(&s, &["button", "icon", "menu", "按钮", "图标", "菜单"]) {
        // A GUI step with no API equivalent: drop it, offer nothing.
        return Some(None);
    }
    None
}

/// Splits text into sentences, keeping each sentence's terminator and the
/// whitespace after it, so that joining the kept ones reads naturally.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end_here = match c {
            '。' | '！' | '？' | '\n' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if end_here {
            let mut end = i + c.len_utf8();
            while let Some(&(j, n)) = chars.peek() {
                if n == ' ' || n == '\t' {
                    end = j + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Removes GUI instructions from the agent's text and lists the actions they
/// stood for.
pub fn translate(text: &str) -> Translated {
    let mut kept = String::with_capacity(text.len());
    let mut actions = Vec::new();
    for sentence in sentences(text) {
        match gui_instruction(sentence) {
            Some(action) => {
                if let Some(a) = action {
                    if !actions.contains(&a) {
                        actions.push(a);
                    }
                }
                if sentence.ends_with('\n') && !kept.is_empty() && !kept.ends_with('\n') {
                    kept.push('\n');
                }
            }
            None => kept.push_str(sentence),
        }
    }
    // Collapse the blank lines that removed sentences leave behind.
    let mut text = String::with_capacity(kept.len());
    let mut blank_run = 0;
    for line in kept.trim().split('\n') {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line.trim_end());
    }
    Translated { text, actions }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_export_instruction_becomes_an_action() {
        let t = translate(
            "I added lo-fi music at 35%. Click the Export button to download your video.",
        );
        assert_eq!(t.text, "I added lo-fi music at 35%.");
        assert_eq!(t.actions, vec![GuiAction::Export]);
    }

    #[test]
    fn chinese_instructions() {
        let t = translate("已为你添加了背景音乐。点击导出即可下载视频。打开时间线面板可以预览。");
        assert_eq!(t.text, "已为你添加了背景音乐。");
        assert_eq!(t.actions, vec![GuiAction::Export, GuiAction::ShowTimeline]);
    }

    #[test]
    fn content_is_kept() {
        for text in [
            "The metronome clicks add rhythm to the intro.",
            "Added a dragon sticker (0-3s).",
            "Removed the clicks from the exported audio.",
            "The tape hiss is gone and the pressure is off.",
            "Your video is ready to export whenever you like.",
            "视频已经可以导出了。",
            "Trimmed to 8 seconds (v1.2 of the cut).",
        ] {
            let t = translate(text);
            assert_eq!(t.text, text);
            assert!(t.actions.is_empty(), "{text}");
        }
    }

    #[test]
    fn other_gui_phrases() {
        let t = translate("Done!\nYou can preview in timeline.\nDrag the clip to reorder it.\nCheck your account page for billing.");
        assert_eq!(t.text, "Done!");
        assert_eq!(
            t.actions,
            vec![
                GuiAction::ShowTimeline,
                GuiAction::DescribeEdit,
                GuiAction::ShowCredits
            ]
        );
    }

    #[test]
    fn unknown_buttons_are_dropped_without_action() {
        let t = translate("Title added. Click the Apply button to confirm.");
        assert_eq!(t.text, "Title added.");
        assert!(t.actions.is_empty());
    }
}

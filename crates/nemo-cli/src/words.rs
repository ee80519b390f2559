//! The command line's own words in Chinese (`--lang zh`, or a `zh_*`
//! locale): labels, prefixes and fixed phrases. The agent answers in the
//! session's language by itself; what the core and the store say (errors,
//! notes) stays as they word it.

use std::sync::atomic::{AtomicBool, Ordering};

static CHINESE: AtomicBool = AtomicBool::new(false);

/// Switches the command line's words to Chinese (for the whole process).
pub(crate) fn use_chinese(on: bool) {
    CHINESE.store(on, Ordering::Relaxed);
}

/// The English phrase and its Chinese.
const TABLE: &[(&str, &str)] = &[
    ("error:", "错误："),
    ("warning:", "警告："),
    ("hint:", "提示："),
    ("Uploaded", "已上传"),
    ("Saved", "已保存"),
    ("Changed:", "已修改："),
    ("Credits:", "积分："),
    ("Rendered:", "已渲染："),
    ("Open in the browser:", "在浏览器中打开："),
    ("Register to keep going:", "注册以继续使用："),
    ("Link:", "链接："),
    ("Still working…", "仍在处理…"),
    ("Uploading", "上传中"),
    ("Downloading", "下载中"),
    ("Rendering", "渲染中"),
    ("[reply cut off]", "[回复被中断]"),
    (
        "→ attach it with --file PATH or --url URL",
        "→ 用 --file 路径 或 --url 链接 附上文件",
    ),
    ("Try saying:", "可以这样说："),
    (
        "Type /help for help, /quit to leave.",
        "输入 /help 查看帮助，/quit 退出。",
    ),
    (
        "(Ctrl-C drops the line; type /quit or press Ctrl-D to leave.)",
        "（Ctrl-C 清除这一行；输入 /quit 或按 Ctrl-D 退出。）",
    ),
    ("No render jobs recorded.", "没有记录的渲染任务。"),
];

/// `english` in the command line's language.
pub(crate) fn tr(english: &'static str) -> &'static str {
    lookup(english, CHINESE.load(Ordering::Relaxed))
}

fn lookup(english: &'static str, chinese: bool) -> &'static str {
    if !chinese {
        return english;
    }
    TABLE
        .iter()
        .find(|(en, _)| *en == english)
        .map_or(english, |(_, zh)| zh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phrase_has_its_chinese_and_english_stays_english() {
        // `lookup`, not `tr`: the switch is process-wide, and other tests
        // run at the same time.
        assert_eq!(lookup("Saved", false), "Saved");
        assert_eq!(lookup("Saved", true), "已保存");
        assert_eq!(lookup("not in the table", true), "not in the table");
        for (en, zh) in TABLE {
            assert_eq!(lookup(en, true), *zh);
            assert!(!zh.is_ascii(), "{en}");
        }
    }
}

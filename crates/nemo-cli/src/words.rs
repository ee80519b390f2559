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
    ("No render jobs to resume.", "没有要恢复的渲染任务。"),
    ("ITEM", "项"),
    ("STATUS", "状态"),
    ("OUTPUT", "输出"),
    ("DETAIL", "详情"),
    ("  SESSION", "  会话"),
    ("LAST USED", "上次使用"),
    ("FIRST MESSAGE", "第一条消息"),
    ("RENDER", "渲染"),
    ("STATE", "状态"),
    ("SESSION", "会话"),
    ("STARTED", "开始于"),
    ("SETTING", "设置"),
    ("VALUE", "值"),
    ("FROM", "来源"),
    ("rendering {}% (ETA {})", "渲染中 {}%（预计还需 {}）"),
    ("rendering {}%", "渲染中 {}%"),
    ("checking in ", "检查倒计时 "),
    ("ready to export: say \"export\"", "可以导出了：说“导出”"),
    ("see the timeline: say \"status\"", "查看时间线：说“状态”"),
    ("see your balance: say \"credits\"", "查看余额：说“积分”"),
    (
        "describe the change in words and it will be applied",
        "用文字描述修改，就会应用",
    ),
    ("{} (or run `{}`)", "{}（或运行 `{}`）"),
    (
        "the render is kept in the job list: save it elsewhere with `nemo jobs --resume --dir DIR`, or replace the file with `nemo jobs --resume --overwrite`.",
        "渲染保留在任务列表中：用 `nemo jobs --resume --dir DIR` 保存到别处，或用 `nemo jobs --resume --overwrite` 替换该文件。",
    ),
    ("finish it later with `nemo jobs --resume`.", "稍后用 `nemo jobs --resume` 完成它。"),
    ("download it later with `nemo jobs --resume`.", "稍后用 `nemo jobs --resume` 下载它。"),
    (
        "NEMO_TOKEN was rejected (expired or invalid): set a valid token, or unset NEMO_TOKEN to use a free anonymous one.",
        "NEMO_TOKEN 被拒绝（过期或无效）：设置有效的令牌，或取消 NEMO_TOKEN 以使用免费的匿名令牌。",
    ),
    (
        "set NEMO_TOKEN to a token of your account, or try again later.",
        "把 NEMO_TOKEN 设为你账户的令牌，或稍后再试。",
    ),
    (
        "attach files with --file PATH or links with --url URL.",
        "用 --file 路径 附上文件，或用 --url 链接 附上链接。",
    ),
    ("start again with --new-session.", "用 --new-session 重新开始。"),
    (
        "check your connection (or NEMO_API_URL) and try again.",
        "检查网络连接（或 NEMO_API_URL）后重试。",
    ),
    (
        "Finish them with `nemo jobs --resume` (running ones are left to the process waiting for them); drop one with `nemo jobs forget <RENDER>`.",
        "用 `nemo jobs --resume` 完成它们（正在运行的留给等待它们的进程）；用 `nemo jobs forget <RENDER>` 删除一个。",
    ),
    ("Resuming {}…", "正在恢复 {}…"),
    ("Skipping {}: it was sent to {} (set NEMO_API_URL to that to resume it).", "跳过 {}：它发往 {}（把 NEMO_API_URL 设为该地址才能恢复）。"),
    ("Skipping {}: another nemo process is waiting for it.", "跳过 {}：另一个 nemo 进程正在等待它。"),
    ("Skipping {}: it was finished meanwhile.", "跳过 {}：它已在此期间完成。"),
    ("Recorded the session to {}", "会话已录制到 {}"),
    ("Running {} item(s), {} at a time…", "正在处理 {} 项，每次 {} 项…"),
    ("Wrote render {} to stdout ({}).", "已将渲染 {} 写到标准输出（{}）。"),
    ("Replayed offline: nothing was sent and no file was written.", "已离线重放：没有发送任何请求，也没有写入文件。"),
    ("Unknown command {}; type /help.", "未知命令 {}；输入 /help。"),
    ("Skipped a line that is not UTF-8 text.", "跳过了一行不是 UTF-8 文本的输入。"),
    ("Config folder: {}", "配置文件夹：{}"),
    ("* the session plain commands continue; switch with `nemo sessions use <SESSION>`.", "* 普通命令继续使用的会话；用 `nemo sessions use <SESSION>` 切换。"),
    ("Plain commands now continue session {}.", "普通命令现在继续使用会话 {}。"),
    ("Forgot session {} (it stays on the server).", "已忘记会话 {}（它仍保留在服务器上）。"),
    (
        "No sessions used from this machine yet; `nemo upload`, `nemo say` or `nemo chat` starts one.",
        "这台机器还没有使用过会话；`nemo upload`、`nemo say` 或 `nemo chat` 会开始一个。",
    ),
    (
        "Say what you want in words; attach files by typing their paths.
  export | download      render and download the video
  status | show tracks   the timeline
  credits                the credit balance
  /help                  this help
  /quit                  leave (Ctrl-D works too)",
        "用文字说出你想要的；输入文件路径即可附上文件。
  导出 | export           渲染并下载视频
  状态 | status           时间线
  积分 | credits          积分余额
  /help                  这份帮助
  /quit                  退出（Ctrl-D 也可以）",
    ),
];

/// `template` in the command line's language, each `{}` replaced by the
/// next of `args` (the templates of the table above).
pub(crate) fn trf(template: &'static str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut parts = tr(template).split("{}").peekable();
    while let Some(part) = parts.next() {
        out.push_str(part);
        if parts.peek().is_some() {
            if let Some(arg) = args.next() {
                out.push_str(&arg.to_string());
            }
        }
    }
    out
}

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
            // A template keeps its number of blanks in both languages.
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "{en}");
        }
        assert_eq!(trf("Resuming {}…", &[&"r1"]), "Resuming r1…");
        // The core's action hints are translated too: a change of their
        // words must come here.
        use nemo_core::gui::GuiAction;
        for action in [
            GuiAction::Export,
            GuiAction::ShowTimeline,
            GuiAction::ShowCredits,
            GuiAction::DescribeEdit,
        ] {
            assert_ne!(lookup(action.hint(), true), action.hint(), "{action:?}");
        }
    }
}

//! The commands async-imap cannot carry for us, run on its stream between its commands.
//!
//! NOTE: async-imap's parser (imap-proto 0.17) has no NAMESPACE response: a `* NAMESPACE`
//! line fails to parse and stays in its buffer, breaking every later command. Its errors
//! for a `NO` render the server's text through `Debug` (`code: None, info: Some(..)`), so a
//! refused CREATE would reach the admin garbled. And its IDLE handle swallows the
//! continuation line, the only place a server says its IDLE merely polls. So NAMESPACE,
//! CREATE and a trial IDLE are written and read here, on the session's own stream, one byte
//! at a time: nothing past our tagged line is consumed, and async-imap's buffer is empty
//! between its commands (servers send whole lines; anything unsolicited that arrives
//! meanwhile is read here and returned as an untagged line).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connection::ImapSession;

/// Our tag; async-imap's are `A0001`... so the two never meet.
const TAG: &str = "MI1";
/// A line longer than this is not an answer to NAMESPACE or CREATE.
const MAX_REPLY: usize = 64 * 1024;

/// The server's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// Untagged lines (`* ...`), CRLF removed; literals left in place after their `{N}`.
    pub untagged: Vec<String>,
    /// `OK`, `NO` or `BAD`, upper case.
    pub status: String,
    /// The tagged line after the tag: the server's own words (`NO Invalid mailbox name.`).
    pub text: String,
}

impl RawReply {
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// Whether the answer carries the response code `code` (`ALREADYEXISTS`).
    pub fn has_code(&self, code: &str) -> bool {
        let rest = self.text[self.status.len()..].trim_start();
        rest.strip_prefix('[')
            .and_then(|r| r.split([']', ' ']).next())
            .is_some_and(|c| c.eq_ignore_ascii_case(code))
    }
}

/// Reads one response line, with any `{N}` literal's bytes kept inline.
async fn read_line(session: &mut ImapSession) -> std::io::Result<String> {
    let stream = session.get_mut();
    let mut line = Vec::new();
    loop {
        let byte = stream.read_u8().await?;
        line.push(byte);
        if line.len() > MAX_REPLY {
            return Err(std::io::Error::other("answer longer than 64 KiB"));
        }
        if !line.ends_with(b"\r\n") {
            continue;
        }
        let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
        let literal = text
            .strip_suffix('}')
            .and_then(|t| t.rsplit_once('{'))
            .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
        match literal {
            Some(len) if len <= MAX_REPLY => {
                let mut bytes = vec![0; len];
                stream.read_exact(&mut bytes).await?;
                line.extend_from_slice(&bytes);
            }
            Some(_) => return Err(std::io::Error::other("literal longer than 64 KiB")),
            None => {
                line.truncate(line.len() - 2);
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }
}

async fn send(session: &mut ImapSession, line: &str) -> std::io::Result<()> {
    let stream = session.get_mut();
    stream.write_all(format!("{line}\r\n").as_bytes()).await?;
    stream.flush().await
}

/// One line of an answer: our tagged end, a continuation (`+ text`), or anything else.
enum Line {
    Tagged(RawReply),
    Continuation(String),
    Untagged(String),
}

async fn next_line(session: &mut ImapSession, untagged: &mut Vec<String>) -> std::io::Result<Line> {
    let line = read_line(session).await?;
    if let Some(text) = line.strip_prefix(TAG).and_then(|r| r.strip_prefix(' ')) {
        let status = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
        return Ok(Line::Tagged(RawReply {
            untagged: std::mem::take(untagged),
            status,
            text: text.to_string(),
        }));
    }
    Ok(match line.strip_prefix('+') {
        Some(text) => Line::Continuation(text.trim_start().to_string()),
        None => Line::Untagged(line),
    })
}

/// Reads up to the tagged answer; continuations are kept as untagged lines.
async fn finish(session: &mut ImapSession, mut untagged: Vec<String>) -> std::io::Result<RawReply> {
    loop {
        match next_line(session, &mut untagged).await? {
            Line::Tagged(reply) => return Ok(reply),
            Line::Continuation(text) => untagged.push(format!("+ {text}")),
            Line::Untagged(line) => untagged.push(line),
        }
    }
}

/// Sends `command` and reads up to its tagged answer.
pub(super) async fn command(session: &mut ImapSession, command: &str) -> std::io::Result<RawReply> {
    send(session, &format!("{TAG} {command}")).await?;
    finish(session, Vec::new()).await
}

/// What a trial IDLE showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleTrial {
    /// The continuation's text (`entering idle mode`); `None` if IDLE was refused outright.
    pub continuation: Option<String>,
    /// The end of it: untagged lines that came meanwhile (`* 3 EXISTS`) and the tagged line.
    pub reply: RawReply,
}

/// Starts IDLE (a mailbox must be selected), takes the server's continuation line, and ends
/// it at once with DONE.
pub(super) async fn try_idle(session: &mut ImapSession) -> std::io::Result<IdleTrial> {
    send(session, &format!("{TAG} IDLE")).await?;
    let mut untagged = Vec::new();
    loop {
        match next_line(session, &mut untagged).await? {
            Line::Tagged(reply) => {
                return Ok(IdleTrial {
                    continuation: None,
                    reply,
                });
            }
            Line::Continuation(text) => {
                send(session, "DONE").await?;
                return Ok(IdleTrial {
                    continuation: Some(text),
                    reply: finish(session, untagged).await?,
                });
            }
            Line::Untagged(line) => untagged.push(line),
        }
    }
}

/// A quoted IMAP string (the name is modified UTF-7, so ASCII without CR or LF).
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::RawReply;

    #[test]
    fn response_codes_are_found_after_the_status() {
        let reply = |text: &str| RawReply {
            untagged: Vec::new(),
            status: text.split(' ').next().unwrap().into(),
            text: text.into(),
        };
        assert!(reply("NO [ALREADYEXISTS] Mailbox already exists").has_code("ALREADYEXISTS"));
        assert!(reply("NO [alreadyexists] exists").has_code("ALREADYEXISTS"));
        assert!(!reply("NO Invalid mailbox name.").has_code("ALREADYEXISTS"));
        assert!(!reply("NO [CANNOT] Invalid name").has_code("ALREADYEXISTS"));
    }
}

//! The typed views of the two directions: [`NgRequest`] (command, call-id, flags) and
//! [`NgResponse`] / [`NgAnswer`] (a node's answer, checked by a scan that builds nothing).

use crate::bencode::*;

/// ng commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Ping,
    Offer,
    Answer,
    Delete,
    Query,
    List,
    Statistics,
    StartRecording,
    StopRecording,
    StartForwarding,
    StopForwarding,
    BlockDtmf,
    UnblockDtmf,
    BlockMedia,
    UnblockMedia,
}

impl Command {
    pub const ALL: [Command; 15] = [
        Command::Ping,
        Command::Offer,
        Command::Answer,
        Command::Delete,
        Command::Query,
        Command::List,
        Command::Statistics,
        Command::StartRecording,
        Command::StopRecording,
        Command::StartForwarding,
        Command::StopForwarding,
        Command::BlockDtmf,
        Command::UnblockDtmf,
        Command::BlockMedia,
        Command::UnblockMedia,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Offer => "offer",
            Command::Answer => "answer",
            Command::Delete => "delete",
            Command::Query => "query",
            Command::List => "list",
            Command::Statistics => "statistics",
            Command::StartRecording => "start recording",
            Command::StopRecording => "stop recording",
            Command::StartForwarding => "start forwarding",
            Command::StopForwarding => "stop forwarding",
            Command::BlockDtmf => "block DTMF",
            Command::UnblockDtmf => "unblock DTMF",
            Command::BlockMedia => "block media",
            Command::UnblockMedia => "unblock media",
        }
    }

    pub fn parse(s: &str) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// Commands that concern one call and need its call-id.
    pub fn needs_call_id(self) -> bool {
        !matches!(self, Command::Ping | Command::List | Command::Statistics)
    }
}

/// A typed ng request: the command plus the whole dictionary (including `command`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NgRequest {
    pub command: Command,
    pub dict: Dict,
}

impl NgRequest {
    /// A new request with only `command` set.
    pub fn new(command: Command) -> NgRequest {
        let mut dict = Dict::new();
        dict.set("command", Bencode::str(command.as_str()));
        NgRequest { command, dict }
    }

    /// Builder-style setter of a string key.
    pub fn with(mut self, key: &str, value: &str) -> NgRequest {
        self.dict.set(key, Bencode::str(value));
        self
    }

    /// Types a decoded dictionary: `command` must be a known command; `call-id` must be present
    /// for per-call commands.
    pub fn from_dict(dict: Dict) -> Result<NgRequest, CodecError> {
        let name = match dict.get("command") {
            None => return Err(CodecError::Missing("command")),
            Some(v) => v.as_str().ok_or(CodecError::NotString("command"))?,
        };
        let command = Command::parse(name)
            .ok_or_else(|| CodecError::UnknownCommand(name.chars().take(64).collect()))?;
        if command.needs_call_id() {
            match dict.get("call-id") {
                None => return Err(CodecError::Missing("call-id")),
                Some(v) if v.as_str().is_none() => return Err(CodecError::NotString("call-id")),
                Some(_) => {}
            }
        }
        Ok(NgRequest { command, dict })
    }

    /// Decodes a request datagram into (cookie, request).
    pub fn decode(data: &[u8]) -> Result<(Vec<u8>, NgRequest), CodecError> {
        let (cookie, dict) = parse_datagram(data)?;
        Ok((cookie.to_vec(), NgRequest::from_dict(dict)?))
    }

    pub fn encode(&self, cookie: &[u8]) -> Vec<u8> {
        encode_datagram(cookie, &self.dict)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.dict.str("call-id")
    }
    pub fn from_tag(&self) -> Option<&str> {
        self.dict.str("from-tag")
    }
    pub fn to_tag(&self) -> Option<&str> {
        self.dict.str("to-tag")
    }
    pub fn sdp(&self) -> Option<&[u8]> {
        match self.dict.get("sdp") {
            Some(Bencode::Bytes(b)) => Some(b),
            _ => None,
        }
    }
    /// The `flags` list (strings only).
    pub fn flags(&self) -> Vec<&str> {
        match self.dict.get("flags") {
            Some(Bencode::List(l)) => l.iter().filter_map(Bencode::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// The `result` of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NgResult {
    Ok,
    Pong,
    Error(String),
    /// any other result string (e.g. `load limit`), kept as sent
    Other(String),
}

/// A typed ng response: the result plus the whole dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NgResponse {
    pub result: NgResult,
    pub dict: Dict,
}

impl NgResponse {
    pub fn from_dict(dict: Dict) -> Result<NgResponse, CodecError> {
        let r = match dict.get("result") {
            None => return Err(CodecError::Missing("result")),
            Some(v) => v.as_str().ok_or(CodecError::NotString("result"))?,
        };
        let result = match r {
            "ok" => NgResult::Ok,
            "pong" => NgResult::Pong,
            "error" => NgResult::Error(dict.str("error-reason").unwrap_or("").to_string()),
            other => NgResult::Other(other.to_string()),
        };
        Ok(NgResponse { result, dict })
    }

    pub fn decode(data: &[u8]) -> Result<(Vec<u8>, NgResponse), CodecError> {
        let (cookie, dict) = parse_datagram(data)?;
        Ok((cookie.to_vec(), NgResponse::from_dict(dict)?))
    }

    pub fn encode(&self, cookie: &[u8]) -> Vec<u8> {
        encode_datagram(cookie, &self.dict)
    }

    /// `{result: error, error-reason: reason}`.
    pub fn error(reason: &str) -> NgResponse {
        let mut dict = Dict::new();
        dict.set("result", Bencode::str("error"));
        dict.set("error-reason", Bencode::str(reason));
        NgResponse {
            result: NgResult::Error(reason.to_string()),
            dict,
        }
    }

    pub fn pong() -> NgResponse {
        let mut dict = Dict::new();
        dict.set("result", Bencode::str("pong"));
        NgResponse {
            result: NgResult::Pong,
            dict,
        }
    }

    pub fn sdp(&self) -> Option<&[u8]> {
        match self.dict.get("sdp") {
            Some(Bencode::Bytes(b)) => Some(b),
            _ => None,
        }
    }
}

/// A node's answer as it arrived: its result, and the bencoded dictionary's bytes.
///
/// [`NgAnswer::decode`] checks the whole message exactly as [`NgResponse::decode`] does (same
/// errors, property-tested) but builds nothing: it only reads `result` and `error-reason`. The
/// proxy then sends the node's bytes on under Kamailio's cookie ([`NgAnswer::encode`]) instead of
/// decoding and re-encoding every answer (an offer's carries the SDP); [`Quality::from_answer`]
/// reads a `delete`'s figures in place, and [`NgAnswer::response`] builds the dictionary where it
/// is needed (JSON-RPC answers). Measured:
/// docs/BENCHMARKS.md, the media proxy section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NgAnswer {
    pub result: NgResult,
    /// the bencoded dictionary, as sent
    pub(crate) body: Vec<u8>,
}

impl NgAnswer {
    pub fn decode(data: &[u8]) -> Result<(&[u8], NgAnswer), CodecError> {
        let (cookie, body) = split_datagram(data)?;
        let (result, reason) = scan_answer(body)?;
        let result = match result {
            None => return Err(CodecError::Missing("result")),
            Some(r) => r.ok_or(CodecError::NotString("result"))?,
        };
        let result = match result {
            "ok" => NgResult::Ok,
            "pong" => NgResult::Pong,
            "error" => NgResult::Error(reason.flatten().unwrap_or("").to_string()),
            other => NgResult::Other(other.to_string()),
        };
        Ok((
            cookie,
            NgAnswer {
                result,
                body: body.to_vec(),
            },
        ))
    }

    /// `cookie SP` the node's dictionary, byte for byte.
    pub fn encode(&self, cookie: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(cookie.len() + 1 + self.body.len());
        out.extend_from_slice(cookie);
        out.push(b' ');
        out.extend_from_slice(&self.body);
        out
    }

    /// The recording files the node names in this answer: RTPEngine lists a recorded call's
    /// files (the pcap path with `--recording-method=pcap`) under `recordings` in its answers to
    /// `offer` / `answer`. Decodes the answer: call it only for a call being recorded. Empty when
    /// there are none (or the answer does not decode); non-text entries are skipped.
    pub fn recordings(&self) -> Vec<String> {
        let Ok(r) = self.response() else {
            return Vec::new();
        };
        match r.dict.get("recordings") {
            Some(Bencode::List(items)) => items
                .iter()
                .filter_map(Bencode::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The whole answer, decoded.
    pub fn response(&self) -> Result<NgResponse, CodecError> {
        match Bencode::decode(&self.body)? {
            Bencode::Dict(d) => NgResponse::from_dict(d),
            _ => Err(CodecError::NotDict),
        }
    }
}

impl From<&NgResponse> for NgAnswer {
    fn from(r: &NgResponse) -> NgAnswer {
        let mut body = Vec::with_capacity(64);
        encode_dict(&r.dict, &mut body);
        NgAnswer {
            result: r.result.clone(),
            body,
        }
    }
}

impl From<NgResponse> for NgAnswer {
    fn from(r: NgResponse) -> NgAnswer {
        NgAnswer::from(&r)
    }
}

/// A key's first value: `Some(Some(text))`, or `Some(None)` when it is not a UTF-8 string.
pub(crate) type FirstText<'a> = Option<Option<&'a str>>;

/// Checks `body` as [`Bencode::decode`] + "must be a dictionary" would, and returns the first
/// `result` and `error-reason` values (what [`Dict::get`] would find).
pub(crate) fn scan_answer(body: &[u8]) -> Result<(FirstText<'_>, FirstText<'_>), CodecError> {
    let mut p = Parser { b: body, pos: 0 };
    if p.peek()? != b'd' {
        p.skip(0)?;
        if p.pos != body.len() {
            return Err(CodecError::Trailing { at: p.pos });
        }
        return Err(CodecError::NotDict);
    }
    p.pos += 1;
    let (mut result, mut reason): (FirstText, FirstText) = (None, None);
    while p.peek()? != b'e' {
        let key = p.key()?;
        let slot = match key {
            b"result" if result.is_none() => &mut result,
            b"error-reason" if reason.is_none() => &mut reason,
            _ => {
                p.skip(1)?;
                continue;
            }
        };
        *slot = Some(if p.peek()?.is_ascii_digit() {
            std::str::from_utf8(p.bytes()?).ok()
        } else {
            p.skip(1)?;
            None
        });
    }
    p.pos += 1;
    if p.pos != body.len() {
        return Err(CodecError::Trailing { at: p.pos });
    }
    Ok((result, reason))
}

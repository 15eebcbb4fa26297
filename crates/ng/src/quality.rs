//! Call quality figures read from `query` / `delete` answers, in place or from a decoded
//! dictionary.

use crate::bencode::*;
use crate::message::*;

/// Per-call media quality read from a `query` or `delete` response.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// RTP packets relayed (both directions, `totals.RTP.packets`)
    pub rtp_packets: u64,
    pub rtp_bytes: u64,
    pub rtp_errors: u64,
    pub rtcp_packets: u64,
    /// per received SSRC: packets, loss and jitter from RTCP, MOS (×10 as RTPEngine reports it,
    /// e.g. 43 = 4.3) when RTPEngine computed one
    pub ssrcs: Vec<SsrcQuality>,
    /// lowest average MOS over the SSRCs (×10), if any
    pub mos_x10: Option<i64>,
    /// packets lost per RTCP (sum over SSRCs), if reported
    pub packets_lost: Option<u64>,
    /// highest jitter over the SSRCs (ms, as reported), if any
    pub jitter: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SsrcQuality {
    pub ssrc: String,
    pub packets: Option<u64>,
    pub mos_x10: Option<i64>,
    pub jitter: Option<i64>,
    pub packet_loss: Option<i64>,
}

/// Read access to a dictionary, built ([`Dict`]) or still bencoded ([`RawDict`]), so that one
/// reading of the quality figures serves both.
pub(crate) trait DictView: Sized {
    fn dict(&self, key: &str) -> Option<Self>;
    fn int(&self, key: &str) -> Option<i64>;
    /// Calls `f` with every entry whose value is a dictionary, in wire order.
    fn each_dict(&self, f: impl FnMut(&[u8], Self));
}

impl<'a> DictView for &'a Dict {
    fn dict(&self, key: &str) -> Option<&'a Dict> {
        Dict::dict(self, key)
    }
    fn int(&self, key: &str) -> Option<i64> {
        Dict::int(self, key)
    }
    fn each_dict(&self, mut f: impl FnMut(&[u8], &'a Dict)) {
        for (k, v) in &self.0 {
            if let Some(d) = v.as_dict() {
                f(k, d);
            }
        }
    }
}

/// A bencoded dictionary read in place: the bytes from `d` to its `e`, already checked (by
/// [`NgAnswer::decode`]); a part that does not parse reads as absent.
#[derive(Clone, Copy)]
pub(crate) struct RawDict<'a>(&'a [u8]);

impl<'a> RawDict<'a> {
    /// Every (key, value bytes) pair in wire order.
    fn entries(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut p = Parser { b: self.0, pos: 1 };
        std::iter::from_fn(move || {
            if p.peek().ok()? == b'e' {
                return None;
            }
            let k = p.key().ok()?;
            let start = p.pos;
            p.skip(1).ok()?;
            Some((k, &p.b[start..p.pos]))
        })
    }

    fn get(self, key: &str) -> Option<&'a [u8]> {
        self.entries()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }
}

impl<'a> DictView for RawDict<'a> {
    fn dict(&self, key: &str) -> Option<RawDict<'a>> {
        self.get(key)
            .filter(|v| v.first() == Some(&b'd'))
            .map(RawDict)
    }
    fn int(&self, key: &str) -> Option<i64> {
        let v = self.get(key).filter(|v| v.first() == Some(&b'i'))?;
        Parser { b: v, pos: 0 }.int().ok()
    }
    fn each_dict(&self, mut f: impl FnMut(&[u8], RawDict<'a>)) {
        for (k, v) in self.entries() {
            if v.first() == Some(&b'd') {
                f(k, RawDict(v));
            }
        }
    }
}

pub(crate) fn uint(d: &impl DictView, key: &str) -> u64 {
    d.int(key).and_then(|i| u64::try_from(i).ok()).unwrap_or(0)
}

impl Quality {
    /// Reads what the response carries; missing parts stay zero/None (never an error: quality
    /// is best effort and must not fail a `delete`).
    pub fn from_response(d: &Dict) -> Quality {
        Quality::read(&d)
    }

    /// [`from_response`](Self::from_response) straight from a node's answer, without building
    /// its dictionary (a `delete` answer's full decode takes ~8 µs; this reads only the figures).
    pub fn from_answer(a: &NgAnswer) -> Quality {
        Quality::read(&RawDict(&a.body))
    }

    fn read<D: DictView>(d: &D) -> Quality {
        let mut q = Quality::default();
        if let Some(t) = d.dict("totals") {
            if let Some(rtp) = t.dict("RTP") {
                q.rtp_packets = uint(&rtp, "packets");
                q.rtp_bytes = uint(&rtp, "bytes");
                q.rtp_errors = uint(&rtp, "errors");
            }
            if let Some(rtcp) = t.dict("RTCP") {
                q.rtcp_packets = uint(&rtcp, "packets");
            }
        }
        if let Some(ssrcs) = d.dict("SSRC") {
            ssrcs.each_dict(|k, s| {
                let avg = s.dict("average MOS");
                let mos = avg.as_ref().and_then(|a| a.int("MOS")).filter(|m| *m > 0);
                q.ssrcs.push(SsrcQuality {
                    ssrc: String::from_utf8_lossy(k).into_owned(),
                    packets: s.int("packets").and_then(|i| u64::try_from(i).ok()),
                    mos_x10: mos,
                    jitter: avg.as_ref().and_then(|a| a.int("jitter")),
                    packet_loss: avg.as_ref().and_then(|a| a.int("packet loss")),
                });
            });
        }
        q.mos_x10 = q.ssrcs.iter().filter_map(|s| s.mos_x10).min();
        q.jitter = q.ssrcs.iter().filter_map(|s| s.jitter).max();
        let losses: Vec<i64> = q.ssrcs.iter().filter_map(|s| s.packet_loss).collect();
        q.packets_lost =
            (!losses.is_empty()).then(|| losses.iter().map(|l| (*l).max(0) as u64).sum());
        q
    }
}

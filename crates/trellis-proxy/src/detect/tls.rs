//! Just enough of a TLS ClientHello parser to read the SNI server name, which is what TLS
//! routes (and `tls`/`https` ports) match on when the proxy does not terminate TLS.
//!
//! The input is untrusted bytes from the network: every length is checked against what is
//! actually there through [`Reader`], which only hands out sub-slices via `get`, so malformed
//! or truncated input yields an error, never a panic or an out-of-bounds read.

use thiserror::Error;

/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 0x01;
/// Extension number of `server_name` (RFC 6066 §3).
const EXT_SERVER_NAME: u16 = 0x0000;
/// `NameType` of a DNS host name in the server name list.
const NAME_TYPE_HOST: u8 = 0x00;
/// Longest DNS name: anything longer is not a host name we could route on.
const MAX_HOST_LEN: usize = 253;

/// Why a ClientHello could not be read. Callers treat every kind the same way (the
/// connection is still TLS, just without a usable SNI); the kinds exist for debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ClientHelloError {
    /// The bytes end before a length field says they should.
    #[error("ClientHello truncated")]
    Truncated,
    /// The record is not a handshake record carrying a ClientHello.
    #[error("not a TLS ClientHello")]
    NotClientHello,
    /// The ClientHello continues in a later record; only single-record hellos are parsed.
    #[error("ClientHello spans more than one TLS record")]
    Fragmented,
    /// The server_name extension is present but its contents are invalid.
    #[error("invalid server_name extension")]
    BadServerName,
}

/// The body length announced by a TLS record header, once the 5 header bytes are there.
pub(crate) fn record_body_len(bytes: &[u8]) -> Option<usize> {
    let hi = *bytes.get(3)?;
    let lo = *bytes.get(4)?;
    Some(usize::from(u16::from_be_bytes([hi, lo])))
}

/// Reads the SNI host name from one complete TLS record holding a ClientHello (header
/// included). `Ok(None)` means a well-formed hello without a host name. The name is
/// returned as sent; it is checked to be printable ASCII of DNS length.
pub fn parse_sni(record: &[u8]) -> Result<Option<&str>, ClientHelloError> {
    let mut rec = Reader::new(record);
    if rec.u8()? != 0x16 {
        return Err(ClientHelloError::NotClientHello);
    }
    rec.skip(2)?; // record version: legacy, any 3.x accepted by the classifier.
    let body_len = usize::from(rec.u16()?);
    let body = rec.take(body_len)?;

    let mut hs = Reader::new(body);
    if hs.u8()? != CLIENT_HELLO {
        return Err(ClientHelloError::NotClientHello);
    }
    let hello_len = hs.u24()?;
    if hello_len > hs.remaining() {
        return Err(ClientHelloError::Fragmented);
    }
    let mut hello = Reader::new(hs.take(hello_len)?);
    hello.skip(2 + 32)?; // legacy_version, random
    let session_id = usize::from(hello.u8()?);
    hello.skip(session_id)?;
    let suites = usize::from(hello.u16()?);
    hello.skip(suites)?;
    let compression = usize::from(hello.u8()?);
    hello.skip(compression)?;
    if hello.remaining() == 0 {
        // Extensions are optional in TLS 1.2 and earlier.
        return Ok(None);
    }
    let ext_len = usize::from(hello.u16()?);
    let mut exts = Reader::new(hello.take(ext_len)?);
    while exts.remaining() > 0 {
        let kind = exts.u16()?;
        let len = usize::from(exts.u16()?);
        let data = exts.take(len)?;
        if kind == EXT_SERVER_NAME {
            return server_name(data);
        }
    }
    Ok(None)
}

/// The first `host_name` entry of a `server_name` extension body.
fn server_name(data: &[u8]) -> Result<Option<&str>, ClientHelloError> {
    let mut ext = Reader::new(data);
    let list_len = usize::from(ext.u16()?);
    let mut list = Reader::new(ext.take(list_len)?);
    while list.remaining() > 0 {
        let name_type = list.u8()?;
        let len = usize::from(list.u16()?);
        let name = list.take(len)?;
        if name_type == NAME_TYPE_HOST {
            let valid = !name.is_empty()
                && name.len() <= MAX_HOST_LEN
                && name.iter().all(|b| b.is_ascii_graphic());
            if !valid {
                return Err(ClientHelloError::BadServerName);
            }
            return std::str::from_utf8(name)
                .map(Some)
                .map_err(|_| ClientHelloError::BadServerName);
        }
    }
    Ok(None)
}

/// A bounds-checked big-endian cursor over a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ClientHelloError> {
        let head = self.rest.get(..n).ok_or(ClientHelloError::Truncated)?;
        self.rest = self.rest.get(n..).ok_or(ClientHelloError::Truncated)?;
        Ok(head)
    }

    fn skip(&mut self, n: usize) -> Result<(), ClientHelloError> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, ClientHelloError> {
        let b = self.take(1)?;
        b.first().copied().ok_or(ClientHelloError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, ClientHelloError> {
        let b = self.take(2)?;
        match b {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(ClientHelloError::Truncated),
        }
    }

    fn u24(&mut self) -> Result<usize, ClientHelloError> {
        let b = self.take(3)?;
        match b {
            [a, b, c] => Ok(usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)),
            _ => Err(ClientHelloError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal TLS 1.2-style ClientHello record with optional SNI and a padding extension.
    fn hello(sni: Option<&[u8]>) -> Vec<u8> {
        let mut exts = Vec::new();
        exts.extend_from_slice(&[0x00, 0x15, 0x00, 0x02, 0x00, 0x00]); // padding
        if let Some(name) = sni {
            let n = name.len() as u16;
            exts.extend_from_slice(&EXT_SERVER_NAME.to_be_bytes());
            exts.extend_from_slice(&(n + 5).to_be_bytes());
            exts.extend_from_slice(&(n + 3).to_be_bytes());
            exts.push(NAME_TYPE_HOST);
            exts.extend_from_slice(&n.to_be_bytes());
            exts.extend_from_slice(name);
        }
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![CLIENT_HELLO, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn reads_sni() {
        let rec = hello(Some(b"reviews.default.svc.cluster.local"));
        assert_eq!(
            parse_sni(&rec),
            Ok(Some("reviews.default.svc.cluster.local"))
        );
        assert_eq!(parse_sni(&hello(None)), Ok(None));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let rec = hello(Some(b"example.com"));
        for cut in 0..rec.len() {
            assert!(parse_sni(&rec[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_bad_names_and_fragmented_hellos() {
        assert_eq!(
            parse_sni(&hello(Some(b"bad name"))),
            Err(ClientHelloError::BadServerName)
        );
        assert_eq!(
            parse_sni(&hello(Some(b""))),
            Err(ClientHelloError::BadServerName)
        );
        let mut rec = hello(Some(b"a.example"));
        rec[7] = rec[7].wrapping_add(1); // hello length now exceeds the record
        assert_eq!(parse_sni(&rec), Err(ClientHelloError::Fragmented));
        let mut rec = hello(Some(b"a.example"));
        rec[5] = 0x02; // ServerHello
        assert_eq!(parse_sni(&rec), Err(ClientHelloError::NotClientHello));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_sni(&bytes);
        }

        #[test]
        fn corrupted_hellos_never_panic(idx in 0usize..80, val in any::<u8>()) {
            let mut rec = hello(Some(b"svc.example.org"));
            let i = idx % rec.len();
            rec[i] = val;
            let _ = parse_sni(&rec);
        }
    }
}

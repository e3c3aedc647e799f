//! OTLP trace export requests (`POST /v1/traces`) as MLflow reads them: which MLflow traces the
//! spans of a request go to. MLflow appends each span to the trace `tr-<hex of its OTel trace
//! id>` (creating it in the header's experiment when it does not exist yet, else adding to the
//! trace where it is, whatever the header says), so the gateway decodes every span's trace id
//! exactly as MLflow's parser does and judges each trace. Both encodings MLflow accepts are read:
//! protobuf (`application/x-protobuf`, the wire format walked field by field: only the fields
//! MLflow stores spans from, with protobuf's rules for repeated and unknown fields) and the
//! OTLP/JSON encoding of the spec (camelCase keys, hex ids). JSON spellings MLflow also takes but
//! the spec does not (snake_case keys, base64 ids) are refused rather than guessed at. Bodies
//! compressed with `gzip` or `deflate` are inflated first, within the body limit.

use crate::error::{GatewayError, Reason};
use serde_json::Value;
use std::io::Read;

/// The most distinct traces one export may name (each is checked).
pub const MAX_TRACES: usize = 256;

fn invalid(msg: impl Into<String>) -> GatewayError {
    GatewayError::new(Reason::InvalidField, msg)
}

/// The content types MLflow takes (parameters such as `; charset=utf-8` ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn of(content_type: &str) -> Result<Encoding, GatewayError> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        match base.to_ascii_lowercase().as_str() {
            "application/x-protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(invalid(
                "OTLP bodies must be application/x-protobuf or application/json",
            )),
        }
    }
}

/// The body as MLflow will read it: inflated when `content_encoding` is `gzip` or `deflate`
/// (zlib, or raw deflate as MLflow's reader also accepts), at most `limit` bytes.
pub fn inflate(
    body: &[u8],
    content_encoding: Option<&str>,
    limit: u64,
) -> Result<Vec<u8>, GatewayError> {
    let too_large = || {
        GatewayError::new(
            Reason::BodyTooLarge,
            format!("the OTLP body inflates to more than the gateway accepts ({limit} bytes)"),
        )
    };
    let mut out = Vec::new();
    let read = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), GatewayError> {
        r.take(limit + 1)
            .read_to_end(out)
            .map_err(|_| invalid("the OTLP body could not be inflated"))?;
        if out.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(())
    };
    match content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            read(&mut flate2::read::GzDecoder::new(body), &mut out)?;
            Ok(out)
        }
        Some("deflate") => {
            if read(&mut flate2::read::ZlibDecoder::new(body), &mut out).is_err() {
                out.clear();
                read(&mut flate2::read::DeflateDecoder::new(body), &mut out)?;
            }
            Ok(out)
        }
        Some(other) => Err(invalid(format!(
            "OTLP Content-Encoding `{other}` is not one MLflow reads (gzip, deflate)"
        ))),
    }
}

/// The MLflow trace id of an OTel trace id: `tr-` and the id as a number in at least 32 hex
/// digits (MLflow reads the bytes as a big-endian integer and formats it `032x`).
pub fn mlflow_trace_id(otel: &[u8]) -> String {
    let hex = crate::vocab::names::hex(otel);
    let digits = hex.trim_start_matches('0');
    format!("tr-{digits:0>32}")
}

/// The distinct MLflow traces an export's spans go to, in first-seen order.
pub fn trace_ids(body: &[u8], encoding: Encoding) -> Result<Vec<String>, GatewayError> {
    let otel = match encoding {
        Encoding::Protobuf => proto::trace_ids(body)?,
        Encoding::Json => json_trace_ids(body)?,
    };
    let mut out: Vec<String> = Vec::new();
    for id in otel {
        if id.is_empty() {
            return Err(invalid("an OTLP span has an empty trace id"));
        }
        let t = mlflow_trace_id(&id);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(invalid("the OTLP export holds no spans"));
    }
    if out.len() > MAX_TRACES {
        return Err(invalid(format!(
            "an OTLP export may name at most {MAX_TRACES} traces"
        )));
    }
    Ok(out)
}

/// The OTLP/JSON encoding: `resourceSpans[].scopeSpans[].spans[].traceId` (hex). Keys MLflow
/// would also read under their protobuf names are refused, so the gateway and MLflow cannot read
/// different spans from one body; duplicate keys are refused by the strict parser.
fn json_trace_ids(body: &[u8]) -> Result<Vec<Vec<u8>>, GatewayError> {
    let v = Value::Object(crate::mlflow::json::parse_object(body)?);
    let refuse_aliases = |o: &serde_json::Map<String, Value>, aliases: &[&str]| match aliases
        .iter()
        .find(|a| o.contains_key(**a))
    {
        Some(a) => Err(invalid(format!(
            "OTLP/JSON uses camelCase keys with hex ids (`{a}` is not accepted)"
        ))),
        None => Ok(()),
    };
    let list =
        |o: &serde_json::Map<String, Value>, key: &str| -> Result<Vec<Value>, GatewayError> {
            match o.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => Ok(a.clone()),
                Some(_) => Err(invalid(format!("OTLP `{key}` must be a list"))),
            }
        };
    let obj = |v: &Value, what: &str| -> Result<serde_json::Map<String, Value>, GatewayError> {
        v.as_object()
            .cloned()
            .ok_or_else(|| invalid(format!("OTLP `{what}` entries must be objects")))
    };
    let root = obj(&v, "body")?;
    refuse_aliases(&root, &["resource_spans"])?;
    let mut ids = Vec::new();
    for rs in list(&root, "resourceSpans")? {
        let rs = obj(&rs, "resourceSpans")?;
        refuse_aliases(&rs, &["scope_spans"])?;
        for ss in list(&rs, "scopeSpans")? {
            let ss = obj(&ss, "scopeSpans")?;
            for span in list(&ss, "spans")? {
                let span = obj(&span, "spans")?;
                refuse_aliases(&span, &["trace_id", "span_id", "parent_span_id"])?;
                let hex = span
                    .get("traceId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("an OTLP span has no hex `traceId`"))?;
                ids.push(from_hex(hex)?);
            }
        }
    }
    Ok(ids)
}

fn from_hex(hex: &str) -> Result<Vec<u8>, GatewayError> {
    let b = hex.as_bytes();
    if b.is_empty() || b.len() % 2 != 0 || !b.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid(
            "an OTLP `traceId` must be an even number of hex digits",
        ));
    }
    Ok(b.chunks(2)
        .map(|p| {
            let n = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            n(p[0]) << 4 | n(p[1])
        })
        .collect())
}

/// The protobuf wire format of `ExportTraceServiceRequest`, walked as protobuf parsers read it:
/// every occurrence of a repeated message field is an element; for a singular bytes field the
/// last occurrence wins; a field whose wire type does not match its declaration is an unknown
/// field, skipped; groups are refused.
mod proto {
    use super::invalid;
    use crate::error::GatewayError;

    /// ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.scope_spans = 2;
    /// ScopeSpans.spans = 2; Span.trace_id = 1.
    pub fn trace_ids(body: &[u8]) -> Result<Vec<Vec<u8>>, GatewayError> {
        let mut ids = Vec::new();
        for rs in messages(body, 1)? {
            for ss in messages(rs, 2)? {
                for span in messages(ss, 2)? {
                    let mut id: &[u8] = &[];
                    for f in fields(span)? {
                        if let (1, Field::Len(b)) = f {
                            id = b;
                        }
                    }
                    ids.push(id.to_vec());
                }
            }
        }
        Ok(ids)
    }

    enum Field<'a> {
        Len(&'a [u8]),
        Other,
    }

    /// Every length-delimited occurrence of field `number`.
    fn messages(buf: &[u8], number: u64) -> Result<Vec<&[u8]>, GatewayError> {
        Ok(fields(buf)?
            .into_iter()
            .filter_map(|(n, f)| match (n == number, f) {
                (true, Field::Len(b)) => Some(b),
                _ => None,
            })
            .collect())
    }

    fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, GatewayError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *buf
                .get(*pos)
                .ok_or_else(|| invalid("the OTLP protobuf body is truncated"))?;
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("the OTLP protobuf body has an overlong varint"))
    }

    fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, GatewayError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let key = varint(buf, &mut pos)?;
            let (number, wire) = (key >> 3, key & 7);
            if number == 0 {
                return Err(invalid("the OTLP protobuf body has a field numbered 0"));
            }
            let skip = |pos: &mut usize, n: usize| -> Result<(), GatewayError> {
                if buf.len() - *pos < n {
                    return Err(invalid("the OTLP protobuf body is truncated"));
                }
                *pos += n;
                Ok(())
            };
            match wire {
                0 => {
                    varint(buf, &mut pos)?;
                    out.push((number, Field::Other));
                }
                1 => {
                    skip(&mut pos, 8)?;
                    out.push((number, Field::Other));
                }
                2 => {
                    let len = usize::try_from(varint(buf, &mut pos)?)
                        .map_err(|_| invalid("the OTLP protobuf body is truncated"))?;
                    let start = pos;
                    skip(&mut pos, len)?;
                    out.push((number, Field::Len(&buf[start..pos])));
                }
                5 => {
                    skip(&mut pos, 4)?;
                    out.push((number, Field::Other));
                }
                _ => {
                    return Err(invalid(
                        "the OTLP protobuf body uses a wire type MLflow's messages do not have",
                    ))
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf field: tag and length-delimited payload.
    fn ld(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(number << 3) | 2];
        let mut len = payload.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                v.push(b);
                break;
            }
            v.push(b | 0x80);
        }
        v.extend_from_slice(payload);
        v
    }

    fn span(trace: &[u8]) -> Vec<u8> {
        [ld(1, trace), ld(2, &[1; 8]), vec![0x10, 0x05]].concat()
    }

    /// ExportTraceServiceRequest { resource_spans { resource, scope_spans { spans… } } }.
    fn export(spans: &[Vec<u8>]) -> Vec<u8> {
        let scope: Vec<u8> = spans.iter().flat_map(|s| ld(2, s)).collect();
        ld(1, &[ld(1, b"resource"), ld(2, &scope)].concat())
    }

    #[test]
    fn protobuf_spans_name_their_mlflow_traces() {
        let a = [0xaa; 16];
        let b = [0x00, 0x01].repeat(8);
        let body = export(&[span(&a), span(&b), span(&a)]);
        let ids = trace_ids(&body, Encoding::Protobuf).unwrap();
        assert_eq!(
            ids,
            vec![
                format!("tr-{}", "aa".repeat(16)),
                format!("tr-{}", "0001".repeat(8))
            ]
        );
        // The last trace_id of a span wins; a mistyped field 1 is unknown and skipped.
        let twice = [ld(1, &a), ld(1, &b), vec![0x08, 0x01], ld(2, &[1; 8])].concat();
        let ids = trace_ids(&export(&[twice]), Encoding::Protobuf).unwrap();
        assert_eq!(ids, vec![format!("tr-{}", "0001".repeat(8))]);
        // Truncated, group wire types, empty trace ids and empty exports are refused.
        let mut cut = body.clone();
        cut.truncate(body.len() - 3);
        for bad in [cut, vec![0x0b], export(&[ld(2, &[1; 8])]), Vec::new()] {
            assert!(trace_ids(&bad, Encoding::Protobuf).is_err());
        }
    }

    #[test]
    fn ids_are_numbers_in_at_least_32_hex_digits() {
        assert_eq!(mlflow_trace_id(&[0; 16]), format!("tr-{}", "0".repeat(32)));
        assert_eq!(mlflow_trace_id(&[1]), format!("tr-{}1", "0".repeat(31)));
        let long = [[0u8].as_slice(), &[0xab; 17]].concat();
        assert_eq!(mlflow_trace_id(&long), format!("tr-{}", "ab".repeat(17)));
    }

    #[test]
    fn json_follows_the_otlp_spelling_only() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","spanId":"0102030405060708"}]}]}]}"#;
        assert_eq!(
            trace_ids(body, Encoding::Json).unwrap(),
            vec![format!("tr-{}", "aa".repeat(16))]
        );
        for bad in [
            &br#"{"resource_spans":[]}"#[..],
            br#"{"resourceSpans":[{"scope_spans":[]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"trace_id":"qqqq"}]}]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"aa bb"}]}]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"aa","traceId":"bb"}]}]}]}"#,
            br#"{"resourceSpans":{}}"#,
            br#"{"resourceSpans":[]}"#,
        ] {
            assert!(
                trace_ids(bad, Encoding::Json).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn compressed_bodies_are_inflated_within_the_limit() {
        use std::io::Write;
        let body = export(&[span(&[0xaa; 16])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(inflate(&gz, Some("gzip"), 1 << 20).unwrap(), body);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&body).unwrap();
        assert_eq!(
            inflate(&z.finish().unwrap(), Some("deflate"), 1 << 20).unwrap(),
            body
        );
        let bomb = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&vec![0u8; 1 << 20]).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(
            inflate(&bomb, Some("gzip"), 1000).unwrap_err().reason,
            Reason::BodyTooLarge
        );
        assert!(inflate(&body, Some("br"), 1 << 20).is_err());
        assert_eq!(
            Encoding::of("application/json; charset=utf-8").unwrap(),
            Encoding::Json
        );
        assert!(Encoding::of("text/plain").is_err());
    }
}

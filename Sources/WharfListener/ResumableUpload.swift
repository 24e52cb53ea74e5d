import Foundation
import WharfCore

/// The decisions of resumable uploads (draft-ietf-httpbis-resumable-upload-15), without
/// I/O: what a creation request asks for, whether an append may start, and what its
/// headers and refusals are. `InboxConnection+Resumable.swift` carries them out.
///
/// Wharf's choices where the draft leaves them open:
/// - an upload is created by `PUT /inbox/{name}` or `POST /inbox` carrying
///   `Upload-Complete`, answered at once with `104` and its `Location` (`/uploads/{id}`,
///   the id its receipt will have), and appended to by `PATCH` with `Upload-Offset`;
/// - the partner's size limit applies to the whole file (`Upload-Limit: max-size`); an
///   upload untouched for the maximum age is removed (`max-age`);
/// - a `Repr-Digest`, or the `Content-Digest` of a creation request that says it carries
///   the whole file (`Upload-Complete: ?1`), is the whole file's digest and is checked at
///   completion; any other `Content-Digest` covers its own request's content, which is
///   not kept if it does not match;
/// - only the partner that created an upload sees it; to any other it does not exist.
enum ResumableUpload {
    static let mediaType = "application/partial-upload"

    static func location(_ id: String) -> String { "/uploads/\(id)" }

    /// A structured-field Boolean (`?1`, `?0`); anything else is ignored, as the draft says.
    static func boolean(_ header: String?) -> Bool? {
        switch header?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) {
        case "?1": true
        case "?0": false
        default: nil
        }
    }

    /// A non-negative structured-field Integer (at most 15 digits); anything else is ignored.
    static func integer(_ header: String?) -> Int64? {
        guard let text = header?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces),
              (1...15).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) })
        else { return nil }
        return Int64(text)
    }

    /// `Upload-Limit`: the partner's size limit and the seconds left before an untouched
    /// upload is removed.
    static func limits(maxSize: Int64, maxAge: Duration, lastTouched: Date? = nil, now: Date = Date()) -> String {
        let age = Int64(maxAge.components.seconds)
        let left = lastTouched.map { max(0, age - Int64(now.timeIntervalSince($0))) } ?? age
        return "max-size=\(maxSize), max-age=\(left)"
    }

    /// What a creation request asks for.
    struct Creation: Sendable, Equatable {
        /// The request carries the whole file.
        var complete: Bool
        var length: Int64?
        /// The digest the whole file must have, checked at completion.
        var wholeSHA256: String?
        /// The digest of this request's content.
        var partSHA256: String?
    }

    /// What an append request may do.
    struct Append: Sendable, Equatable {
        var complete: Bool
        /// The whole file's length, if known now.
        var length: Int64?
        var partSHA256: String?
    }

    /// The length a request states, or the refusal of lengths that disagree.
    ///
    /// - Parameters:
    ///   - offset: the upload's offset before the request.
    ///   - known: the length recorded before, if any.
    static func length(
        complete: Bool, uploadLength: String?, contentLength: Int64?, offset: Int64, known: Int64?
    ) -> Result<Int64?, UploadStateMachine.Refusal> {
        var stated = [known, integer(uploadLength)].compactMap { $0 }
        if complete, let contentLength { stated.append(offset + contentLength) }
        guard let first = stated.first else { return .success(nil) }
        guard stated.allSatisfy({ $0 == first }) else {
            return .failure(refusal(400, "inconsistent_length", "the lengths this upload was given disagree (\(stated.map(String.init).joined(separator: ", ")) bytes)"))
        }
        if let contentLength, offset + contentLength > first {
            return .failure(refusal(400, "inconsistent_length", "\(contentLength) more bytes at offset \(offset) pass the upload's length of \(first) bytes"))
        }
        return .success(first)
    }

    /// Whether a `PATCH` may append to `upload`, from its head.
    static func append(
        to upload: PartialUpload, head: UploadStateMachine.Head, limit: Int64, maxAge: Duration
    ) -> Result<Append, UploadStateMachine.Refusal> {
        let type = head.contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == mediaType else {
            var refusal = refusal(415, "unsupported_media_type", "a PATCH to an upload sends Content-Type: \(mediaType)")
            refusal.headers["Accept-Patch"] = mediaType
            return .failure(refusal)
        }
        guard let offset = integer(head.uploadOffset) else {
            return .failure(refusal(400, "bad_header", "send Upload-Offset with the offset a HEAD of the upload reports"))
        }
        guard let complete = boolean(head.uploadComplete) else {
            return .failure(refusal(400, "bad_header", "send Upload-Complete: ?1 with the last part, ?0 with any other"))
        }
        guard offset == upload.offset else {
            var refusal = refusal(409, "mismatching_upload_offset", "the upload's offset is \(upload.offset), not \(offset); append from there")
            refusal.headers["Upload-Offset"] = String(upload.offset)
            return .failure(refusal)
        }
        guard head.declaredLength != nil || head.chunked else {
            return .failure(refusal(411, "length_required", "send Content-Length or a chunked body"))
        }
        let digest: ContentDigest?
        do throws(WharfError) {
            digest = try head.contentDigest.flatMap { header throws(WharfError) in try ContentDigest(header: header) }
        } catch {
            return .failure(refusal(400, "bad_header", error.description))
        }
        let length: Int64?
        switch Self.length(complete: complete, uploadLength: head.uploadLength, contentLength: head.declaredLength, offset: offset, known: upload.length) {
        case .success(let known): length = known
        case .failure(let refusal): return .failure(refusal)
        }
        if let total = length ?? head.declaredLength.map({ offset + $0 }), total > limit {
            return .failure(tooLarge(total, limit: limit, maxAge: maxAge))
        }
        return .success(Append(complete: complete, length: length, partSHA256: digest?.sha256Hex))
    }

    /// The refusal of a file over the partner's limit, with the limits.
    static func tooLarge(_ size: Int64?, limit: Int64, maxAge: Duration) -> UploadStateMachine.Refusal {
        var refusal = refusal(413, "too_large", size.map { "the file of \($0) bytes is over this partner's limit of \(limit) bytes" } ?? "the file passed this partner's limit of \(limit) bytes")
        refusal.headers["Upload-Limit"] = limits(maxSize: limit, maxAge: maxAge)
        return refusal
    }

    /// A refusal of a request to an upload; the connection closes when a body was not read.
    static func refusal(_ status: Int, _ code: String, _ message: String) -> UploadStateMachine.Refusal {
        UploadStateMachine.Refusal(status: status, code: code, message: message, close: true)
    }
}

/// A refusal is what a decision that can fail fails with.
extension UploadStateMachine.Refusal: Error {}

import Foundation
import NIOHTTP1
import WharfCore

/// What a request asks for, decided from its method and path alone.
enum InboxRoute: Sendable, Equatable {
    /// `PUT /inbox/{filename}`.
    case put(InboundFileName)
    /// `POST /inbox`: the name comes from `Content-Disposition`.
    case post
    /// `GET /inbox`: the partner's recent receipts.
    case list
    /// `/outbox…`: a pull partner's files.
    case outbox(OutboxRequest)
    /// `/uploads/{id}`: a resumable upload.
    case upload(UploadRequest)
    /// `OPTIONS /inbox` or `OPTIONS /inbox/{name}`: whether and how uploads resume.
    case options
    case methodNotAllowed(allowed: String)
    case notFound
    case badName(WharfError)
    /// A query parameter that is not usable.
    case badQuery(String)

    /// Whether the request sends a file (`PUT` or `POST`).
    var isUpload: Bool {
        switch self {
        case .put, .post: true
        default: false
        }
    }

    init(method: HTTPMethod, uri: String) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "")
        if path == "/outbox" || path.hasPrefix("/outbox/") {
            self = Self.outbox(method: method, path: path, query: parts.count > 1 ? String(parts[1]) : "")
            return
        }
        if path.hasPrefix("/uploads/") {
            let id = String(path.dropFirst("/uploads/".count))
            guard Self.isUploadID(id) else {
                self = .notFound
                return
            }
            switch method {
            case .HEAD: self = .upload(.offset(id: id))
            case .PATCH: self = .upload(.append(id: id))
            case .DELETE: self = .upload(.cancel(id: id))
            default: self = .methodNotAllowed(allowed: "HEAD, PATCH, DELETE")
            }
            return
        }
        if path == "/inbox" || (path == "/inbox/" && method != .PUT) {
            switch method {
            case .POST: self = .post
            case .GET: self = .list
            case .OPTIONS: self = .options
            default: self = .methodNotAllowed(allowed: "GET, POST, OPTIONS")
            }
            return
        }
        guard path.hasPrefix("/inbox/") else {
            self = .notFound
            return
        }
        if method == .OPTIONS {
            self = .options
            return
        }
        guard method == .PUT else {
            self = .methodNotAllowed(allowed: "PUT, OPTIONS")
            return
        }
        let encoded = String(path.dropFirst("/inbox/".count))
        guard let decoded = encoded.removingPercentEncoding else {
            self = .badName(.invalid("the file name is not valid percent-encoded UTF-8"))
            return
        }
        do {
            self = .put(try InboundFileName(decoded))
        } catch {
            self = .badName(error)
        }
    }
}

extension InboxRoute {
    /// At most this many files in one page of `GET /outbox`.
    static let outboxPageLimit = 1000

    private static func outbox(method: HTTPMethod, path: String, query: String) -> InboxRoute {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2).map(String.init)
        switch (segments.count, method) {
        case (_, .GET) where segments.isEmpty || segments == [""]:
            var limit = 100
            var after: String?
            for parameter in query.split(separator: "&") {
                let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let (name, value) = (String(pair[0]), pair.count > 1 ? String(pair[1]).removingPercentEncoding ?? "" : "")
                switch name {
                case "limit":
                    guard let number = Int(value), (1...outboxPageLimit).contains(number) else {
                        return .badQuery("limit must be a whole number from 1 to \(outboxPageLimit)")
                    }
                    limit = number
                case "after":
                    guard isTransferID(value) else { return .badQuery("after must be the id of a file from the outbox") }
                    after = value
                default:
                    continue
                }
            }
            return .outbox(.list(limit: limit, after: after))
        case _ where segments.isEmpty || segments == [""]:
            return .methodNotAllowed(allowed: "GET")
        case (1, .GET) where isTransferID(segments[0]):
            return .outbox(.fetch(id: segments[0]))
        case (1, .DELETE) where isTransferID(segments[0]):
            return .outbox(.acknowledge(id: segments[0]))
        case (1, _) where isTransferID(segments[0]):
            return .methodNotAllowed(allowed: "GET, DELETE")
        case (2, .POST) where isTransferID(segments[0]) && segments[1] == "ack":
            return .outbox(.acknowledge(id: segments[0]))
        case (2, _) where isTransferID(segments[0]) && segments[1] == "ack":
            return .methodNotAllowed(allowed: "POST")
        default:
            return .notFound
        }
    }

    /// Whether `text` could be a transfer id (`t` and a receipt id): anything else is no
    /// file of anyone's.
    static func isTransferID(_ text: String) -> Bool {
        (2...64).contains(text.utf8.count) && text.hasPrefix("t")
            && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x2d || $0 == 0x5f }
    }
}

extension InboxRoute {
    /// Whether `text` could be an upload's id (a receipt id): anything else is no upload
    /// of anyone's.
    static func isUploadID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x2d }
    }
}

/// What a partner asks of one of its resumable uploads.
enum UploadRequest: Sendable, Equatable {
    /// `HEAD /uploads/{id}`: its offset, completeness, length and limits.
    case offset(id: String)
    /// `PATCH /uploads/{id}`: append from `Upload-Offset`.
    case append(id: String)
    /// `DELETE /uploads/{id}`: give it up.
    case cancel(id: String)

    var id: String {
        switch self {
        case .offset(let id), .append(let id), .cancel(let id): id
        }
    }
}

/// What a pull partner asks of its outbox.
enum OutboxRequest: Sendable, Equatable {
    /// `GET /outbox?limit=&after=`: the files waiting, oldest first.
    case list(limit: Int, after: String?)
    /// `GET /outbox/{id}`: one file, whole or the `Range` asked for.
    case fetch(id: String)
    /// `DELETE /outbox/{id}` or `POST /outbox/{id}/ack`: the file arrived.
    case acknowledge(id: String)
}

/// Reading the request headers an upload depends on.
enum UploadHeaders {
    /// The file name of a `Content-Disposition` header (`filename*=UTF-8''…` preferred
    /// over `filename="…"`), or `nil` when it names none.
    static func filename(fromContentDisposition header: String) -> String? {
        var plain: String?
        for parameter in header.split(separator: ";").dropFirst() {
            let parts = parameter.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            var value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "filename*" {
                let pieces = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                if pieces.count == 3, let decoded = String(pieces[2]).removingPercentEncoding { return decoded }
            } else if name == "filename" {
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                    value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
                        .replacingOccurrences(of: "\\\\", with: "\\")
                }
                plain = value
            }
        }
        return plain
    }

    /// The name Wharf gives a POSTed file that came without one.
    static func generatedName(id: String, contentType: String?) -> String {
        let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        let suffix = switch type {
        case "application/json": "json"
        case "application/xml", "text/xml": "xml"
        case "text/csv": "csv"
        case "text/plain": "txt"
        default: "bin"
        }
        return "upload-\(id).\(suffix)"
    }

    /// The `Idempotency-Key` header, when it is usable: 1 to 255 printable ASCII characters.
    static func idempotencyKey(_ header: String?) throws(WharfError) -> String? {
        guard let key = header else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw .invalid("the Idempotency-Key header is not usable", fix: "send 1 to 255 printable ASCII characters without spaces")
        }
        return key
    }
}

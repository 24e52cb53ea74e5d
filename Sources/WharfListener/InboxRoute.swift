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
    case methodNotAllowed(allowed: String)
    case notFound
    case badName(WharfError)

    /// Whether the request sends a file (`PUT` or `POST`).
    var isUpload: Bool {
        switch self {
        case .put, .post: true
        default: false
        }
    }

    init(method: HTTPMethod, uri: String) {
        let path = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        if path == "/inbox" || (path == "/inbox/" && method != .PUT) {
            switch method {
            case .POST: self = .post
            case .GET: self = .list
            default: self = .methodNotAllowed(allowed: "GET, POST")
            }
            return
        }
        guard path.hasPrefix("/inbox/") else {
            self = .notFound
            return
        }
        guard method == .PUT else {
            self = .methodNotAllowed(allowed: "PUT")
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

import Foundation
import NIOConcurrencyHelpers
import WharfCore
import WharfPKI
import X509

/// The certificates receivers presented, by server (`host:port`), to check a Wharf
/// receiver's receipt signature against the key of the connection that answered.
///
/// libcurl hands out a server's certificate only on the attempt that made the connection,
/// not on those that reuse it, so each is remembered from that attempt: a receipt is
/// accepted as signed only by a certificate that server presented in a verified handshake
/// (a few are kept per server, for a certificate reissued while old connections live).
final class ReceiverCertificates: Sendable {
    private let seen = NIOLockedValueBox<[String: [Certificate]]>([:])
    private static let keptPerServer = 4

    static func server(of url: String) -> String {
        let components = URLComponents(string: url)
        return "\(components?.host?.lowercased() ?? ""):\(components?.port ?? 443)"
    }

    func record(_ pem: String, for server: String) {
        guard let certificate = try? Certificate(pemEncoded: pem) else { return }
        seen.withLockedValue { seen in
            var list = seen[server, default: []].filter { $0 != certificate }
            list.append(certificate)
            seen[server] = Array(list.suffix(Self.keptPerServer))
        }
    }

    /// `nil` when `jws` is a valid signature of exactly `body` by a certificate `server`
    /// presented; else why not, in words.
    func problem(with jws: String, of body: String, from server: String) -> String? {
        let presented = seen.withLockedValue { $0[server] ?? [] }.filter { ReceiptSignature.names($0, asSignerOf: jws) }
        guard !presented.isEmpty else { return "it was made with a certificate the receiver did not present" }
        do {
            let verified = try ReceiptSignature.verify(jws, among: presented)
            guard verified.payload == body else { return "it signs another receipt than the one answered" }
            return nil
        } catch {
            return error.problem
        }
    }
}

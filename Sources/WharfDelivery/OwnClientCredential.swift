#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import WharfCore
import WharfPKI

/// Wharf's own client certificate and key, as deliveries present them to partners that
/// set none of their own: loaded (and checked to belong together) once, and again only
/// when either file is replaced.
final class OwnClientCredential: Sendable {
    private let pki: PKIDirectory
    private let loaded = NIOLockedValueBox<(stamp: [Int], credential: ClientCredential)?>(nil)

    init(pki: PKIDirectory) {
        self.pki = pki
    }

    func current() throws(WharfError) -> ClientCredential {
        let stamp = Self.stamp(pki.clientCertificatePath) + Self.stamp(pki.clientKeyPath)
        if let cached = loaded.withLockedValue({ $0 }), cached.stamp == stamp {
            return cached.credential
        }
        let own = try pki.loadClient()
        let credential = ClientCredential(certificatePEM: own.certificate.pemText, privateKeyPEM: own.privateKeyPEM)
        loaded.withLockedValue { $0 = (stamp, credential) }
        return credential
    }

    /// Inode, modification time and size: files are replaced by rename, so a new inode
    /// marks a new file even within the same second.
    private static func stamp(_ path: String) -> [Int] {
        var status = stat()
        guard stat(path, &status) == 0 else { return [-1] }
        return [Int(status.st_ino), status.st_mtim.tv_sec, status.st_mtim.tv_nsec, Int(status.st_size)]
    }
}

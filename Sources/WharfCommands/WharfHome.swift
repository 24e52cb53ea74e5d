import WharfCore
import WharfPKI
import WharfStore

/// The directory that holds one Wharf installation: the registry, `pki/`, `partners/` and
/// `spool/`. `Gateway` builds a running gateway from it.
public struct WharfHome: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var registryPath: String { "\(path)/\(Registry.fileName)" }
    public var pki: PKIDirectory { PKIDirectory(path: "\(path)/pki") }
    public var partnersDirectory: String { "\(path)/partners" }
    public var spoolDirectory: String { "\(path)/spool" }
    /// The file `wharf serve` and `wharf deliver` lock while they run (see `HomeLock`).
    public var lockPath: String { "\(path)/wharf.lock" }

    func bundleDirectory(for partner: PartnerName) -> String { "\(partnersDirectory)/\(partner)" }

    /// The registry of an initialised home.
    public func openRegistry() throws(WharfError) -> Registry {
        try Registry.open(at: registryPath)
    }
}

extension WharfHome {
    /// Every certificate the home uses or accepts, with when it expires: Wharf's CAs, server
    /// and client certificates, and the identities of `partners` that have an end.
    func certificateExpiries(partners: [Partner]) throws(WharfError) -> [CertificateExpiry] {
        let ca = try pki.loadAuthority().certificate
        let identity = try pki.loadIdentityAuthority()?.certificate
        let server = try pki.loadServer().certificate
        let client = try pki.loadClient().certificate
        var expiries = [CertificateExpiry(kind: .ca, fingerprint: ca.fingerprint.hex, notAfter: ca.notValidAfter)]
        if let identity {
            expiries.append(CertificateExpiry(kind: .identityCA, fingerprint: identity.fingerprint.hex, notAfter: identity.notValidAfter))
        }
        expiries.append(CertificateExpiry(kind: .server, fingerprint: server.fingerprint.hex, notAfter: server.notValidAfter))
        expiries.append(CertificateExpiry(kind: .client, fingerprint: client.fingerprint.hex, notAfter: client.notValidAfter))
        return expiries + partners.flatMap(CertificateExpiry.identities(of:))
    }
}

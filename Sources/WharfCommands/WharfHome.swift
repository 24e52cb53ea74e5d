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

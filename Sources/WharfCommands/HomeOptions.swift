import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import WharfStore

/// `--home DIR`, shared by every command.
struct HomeOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The Wharf home: registry, pki/, partners/, spool/. Default: $WHARF_HOME, else the current directory.",
            valueName: "dir"
        )
    )
    var home: String?

    var resolved: WharfHome {
        let path = home ?? ProcessInfo.processInfo.environment["WHARF_HOME"] ?? FileManager.default.currentDirectoryPath
        return WharfHome(path: path)
    }
}

/// The directory that holds one Wharf installation, and the one place where its parts
/// are put together.
struct WharfHome {
    let path: String

    var registryPath: String { "\(path)/\(Registry.fileName)" }
    var pki: PKIDirectory { PKIDirectory(path: "\(path)/pki") }
    var partnersDirectory: String { "\(path)/partners" }
    var spoolDirectory: String { "\(path)/spool" }

    func bundleDirectory(for partner: PartnerName) -> String { "\(partnersDirectory)/\(partner)" }

    /// The registry of an initialised home.
    func openRegistry() throws(WharfError) -> Registry {
        try Registry.open(at: registryPath)
    }
}

import ArgumentParser
import Foundation
import WharfCore

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

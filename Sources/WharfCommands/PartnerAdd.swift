import ArgumentParser
import Foundation
import WharfCore
import WharfSpool

/// `wharf partner add`.
struct PartnerAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Register a partner.",
        discussion: """
            NAME is a slug: lower-case letters, digits and dashes. A partner is recognised by its \
            identities (--subject, --fingerprint); `wharf partner issue NAME` issues it a \
            certificate from Wharf's CA and adds that as an identity.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name, for example acme.")
    var name: String

    @OptionGroup var settings: PartnerSettingsOptions

    func run() throws {
        let name = try PartnerName(name)
        let settings = try settings.parse()
        let home = home.resolved
        let registry = try home.openStore()
        var partner = Partner(name: name)
        try settings.apply(to: &partner)
        try registry.add(partner)
        OperatorAudit.record(registry, "partner add", partner: name.rawValue, "added with \(partner.identities.count) identities: \(partner.identities.map(\.value).joined(separator: ", "))")
        // Its drop folder, so that an operator or a downstream system finds where to put
        // files for it (a missing one is no error: the intake makes the spool's folders).
        let spool = Spool(root: home.spoolDirectory)
        try? FileManager.default.createDirectory(atPath: spool.dropDirectory(for: name.rawValue), withIntermediateDirectories: true)
        Console.print("Added partner \(name) (\(partner.status.rawValue), \(partner.identities.count) \(partner.identities.count == 1 ? "identity" : "identities")).")
        if partner.identities.isEmpty {
            Console.print("Next: `wharf partner issue \(name)` gives it a certificate, or add one with --subject or --fingerprint.")
        }
    }
}

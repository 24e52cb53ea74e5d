import ArgumentParser
import WharfCore
import WharfPKI
import X509

/// `wharf partner update`.
struct PartnerUpdate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a partner's settings: add or remove identities and pins, replace single values.",
        discussion: "Identities and pins given are added to the existing ones; the --remove-… options take them away."
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    @OptionGroup var settings: PartnerSettingsOptions

    @Option(name: .customLong("remove-subject"), help: ArgumentHelp("Stop accepting this subject DN (repeatable).", valueName: "dn"))
    var removeSubjects: [String] = []

    @Option(name: .customLong("remove-fingerprint"), help: ArgumentHelp("Stop accepting the certificate with this fingerprint (repeatable).", valueName: "hex"))
    var removeFingerprints: [String] = []

    @Option(name: .customLong("remove-pin"), help: ArgumentHelp("Stop accepting this server key pin (repeatable).", valueName: "pin"))
    var removePins: [String] = []

    @Flag(help: "Stop trusting the partner's own CA.")
    var removeTrustCA = false

    @Flag(help: "Stop reading the partner CA's CRL.")
    var removeCRL = false

    @Flag(help: "Forget the delivery URL.")
    var removeURL = false

    @Flag(help: "Forget the partner's server CA bundle (the system's CA store is used).")
    var removeServerCA = false

    @Flag(help: "Present Wharf's own client certificate to this partner again.")
    var removeClientCert = false

    func run() throws {
        let name = try PartnerName(name)
        let settings = try settings.parse()
        let removedIdentities = try removeSubjects.map { text throws(WharfError) in try SubjectName(parsing: text).matchKey }
            + removeFingerprints.map { text throws(WharfError) in try CertificateFingerprint(parsing: text).hex }
        let removedPins = try removePins.map { text throws(WharfError) in try PublicKeyPin(parsing: text) }
        let conflicts = [
            (removeTrustCA && settings.trustCAPEM != nil, "--trust-ca"), (removeURL && settings.url != nil, "--url"),
            (removeCRL && settings.revocationList != nil, "--crl"),
            (removeServerCA && settings.serverCAPEM != nil, "--server-ca"),
            (removeClientCert && settings.clientCredential != nil, "--client-cert"),
        ]
        if let (_, option) = conflicts.first(where: { $0.0 }) {
            throw WharfError.invalid("\(option) and its --remove-… flag contradict each other", fix: "give one of them")
        }

        let registry = try home.resolved.openStore()
        let partner = try registry.update(name) { partner throws(WharfError) in
            for key in removedIdentities {
                guard let index = partner.identities.firstIndex(where: { $0.matchKey == key }) else {
                    throw .invalid("\(name) has no identity \(key)", fix: "`wharf partner show \(name)` lists its identities")
                }
                partner.identities.remove(at: index)
            }
            // A pinned certificate goes with its fingerprint identity.
            let removedFingerprints = Set(removedIdentities)
            if let pinned = partner.pinnedCertificatesPEM, !removedFingerprints.isEmpty {
                let kept = try Certificate.parseAll(pem: pinned, source: "the pinned certificates of \(name)")
                    .filter { !removedFingerprints.contains($0.fingerprint.hex) }
                partner.pinnedCertificatesPEM = kept.isEmpty ? nil : kept.map(\.pemText).joined()
            }
            for pin in removedPins {
                guard let index = partner.outbound.pins.firstIndex(of: pin) else {
                    throw .invalid("\(name) has no pin \(pin)", fix: "`wharf partner show \(name)` lists its pins")
                }
                partner.outbound.pins.remove(at: index)
            }
            if removeTrustCA { partner.trustCAPEM = nil }
            if removeCRL { partner.revocationListPath = nil }
            if removeURL { partner.outbound.url = nil }
            if removeServerCA { partner.outbound.serverCAPEM = nil }
            if removeClientCert { partner.outbound.clientCredential = nil }
            try settings.apply(to: &partner)
            if removeTrustCA { try PartnerSettings.checkSubjectsCanBeIssued(partner) }
        }
        OperatorAudit.record(registry, "partner update", partner: name.rawValue, "identities \(partner.identities.map(\.value).joined(separator: ", ")); url \(partner.outbound.url?.rawValue ?? "none"); pins \(partner.outbound.pins.count); status \(partner.status.rawValue)")
        Console.print("Updated partner \(name) (\(partner.status.rawValue), \(partner.identities.count) \(partner.identities.count == 1 ? "identity" : "identities"), \(partner.outbound.pins.count) \(partner.outbound.pins.count == 1 ? "pin" : "pins")).")
    }
}

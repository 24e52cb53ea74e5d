import Foundation

/// Files of a directory queued for a partner at each time of a cron expression.
public struct Schedule: Sendable, Equatable, Codable {
    public let id: Int64
    public let partner: String
    public let cron: String
    public let sourceDirectory: String
    /// A shell glob the file names must match (`*.xml`).
    public let pattern: String
    /// Copy the files and send each again only when it changes, instead of moving them.
    public let keep: Bool
    public let nextRunAt: Date

    public init(id: Int64, partner: String, cron: String, sourceDirectory: String, pattern: String, keep: Bool, nextRunAt: Date) {
        self.id = id
        self.partner = partner
        self.cron = cron
        self.sourceDirectory = sourceDirectory
        self.pattern = pattern
        self.keep = keep
        self.nextRunAt = nextRunAt
    }
}

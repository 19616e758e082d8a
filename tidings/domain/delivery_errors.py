"""The error catalogue of status webhooks: the codes Vonage reports when a message is rejected or undeliverable."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class DeliveryErrorCode(IntEnum):
    THROTTLED = 1000
    MISSING_PARAMS = 1010
    INVALID_PARAMS = 1020
    INTERNAL_ERROR = 1030
    INVALID_MESSAGE = 1040
    NUMBER_BARRED = 1050
    PARTNER_ACCOUNT_BARRED = 1060
    PARTNER_QUOTA_EXCEEDED = 1070
    ILLEGAL_SENDER = 1120
    INVALID_TTL = 1130
    ABSENT_SUBSCRIBER_TEMPORARY = 1180
    ABSENT_SUBSCRIBER_PERMANENT = 1190
    ANTI_SPAM = 1210
    NETWORK_ERROR = 1230
    ILLEGAL_NUMBER = 1240
    UNROUTABLE = 1250
    DESTINATION_UNREACHABLE = 1260
    NOT_IN_PROVIDER_NETWORK = 1300
    UNKNOWN = 1330
    PROVIDER_ERROR = 1331
    OUTSIDE_WINDOW = 1340
    TTL_ACTIVATED = 1360
    INVALID_RESOURCE = 1380


_DETAILS: dict[DeliveryErrorCode, str] = {
    DeliveryErrorCode.THROTTLED: "Throttled - You have exceeded the submission capacity allowed on this account.",
    DeliveryErrorCode.MISSING_PARAMS: "Missing params - Your request is incomplete and missing some mandatory parameters.",
    DeliveryErrorCode.INVALID_PARAMS: "Invalid params - The value of one or more parameters is invalid.",
    DeliveryErrorCode.INTERNAL_ERROR: "Internal error - There was an error processing your request in the Platform.",
    DeliveryErrorCode.INVALID_MESSAGE: "Invalid message - The Platform was unable to process your request.",
    DeliveryErrorCode.NUMBER_BARRED: "Number barred - The number you are trying to submit to is blacklisted.",
    DeliveryErrorCode.PARTNER_ACCOUNT_BARRED: "Partner account barred - The account has been barred from submitting messages.",
    DeliveryErrorCode.PARTNER_QUOTA_EXCEEDED: "Partner quota exceeded - Your account does not have sufficient credit.",
    DeliveryErrorCode.ILLEGAL_SENDER: "Illegal Sender Address - rejected - The SenderID was not accepted.",
    DeliveryErrorCode.INVALID_TTL: "Invalid TTL - The value of ttl in your request was invalid.",
    DeliveryErrorCode.ABSENT_SUBSCRIBER_TEMPORARY: "Absent Subscriber Temporary - The recipient was temporarily unavailable.",
    DeliveryErrorCode.ABSENT_SUBSCRIBER_PERMANENT: "Absent Subscriber Permanent - The recipient is no longer active.",
    DeliveryErrorCode.ANTI_SPAM: "Anti-Spam Rejection - The carrier blocked the message.",
    DeliveryErrorCode.NETWORK_ERROR: "Network Error - A network failure while sending your message.",
    DeliveryErrorCode.ILLEGAL_NUMBER: "Illegal Number - The recipient has opted out.",
    DeliveryErrorCode.UNROUTABLE: "Unroutable - The chosen route to send your message is not available.",
    DeliveryErrorCode.DESTINATION_UNREACHABLE: "Destination unreachable - The message could not be delivered.",
    DeliveryErrorCode.NOT_IN_PROVIDER_NETWORK: "Not part of the provider network - The number or ID is not a user in the provider network.",
    DeliveryErrorCode.UNKNOWN: "Unknown - An unknown error was received from the carrier.",
    DeliveryErrorCode.PROVIDER_ERROR: "Provider error - The provider is not responding or unable to process the request.",
    DeliveryErrorCode.OUTSIDE_WINDOW: "Outside of the allowed window - This message is sent outside of allowed response window.",
    DeliveryErrorCode.TTL_ACTIVATED: "TTL was activated - TTL was activated, no callbacks and no charge will be issued.",
    DeliveryErrorCode.INVALID_RESOURCE: "Invalid resource - Please check that the URL your provided to your resource is accessible and valid.",
}


@dataclass(frozen=True)
class DeliveryError:
    code: DeliveryErrorCode
    detail: str

    @classmethod
    def of(cls, code: DeliveryErrorCode, detail: str | None = None) -> DeliveryError:
        return cls(code=code, detail=detail or _DETAILS[code])

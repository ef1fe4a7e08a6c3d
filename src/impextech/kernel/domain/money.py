"""Money as integer minor units plus an ISO 4217 currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass

from impextech.kernel.domain.errors import FieldIssue, InvalidInput

# Active ISO 4217 codes with their minor-unit exponent (the ones a marketplace prices in).
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KES": 2, "KRW": 0, "KWD": 3,
    "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PEN": 2, "PHP": 2,
    "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2,
    "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

MAX_AMOUNT = 10**12  # a trillion minor units: far above any price, far below int64


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise InvalidInput("amount must be an integer number of minor units")
        if not 0 <= self.amount <= MAX_AMOUNT:
            raise InvalidInput(
                f"amount must be between 0 and {MAX_AMOUNT}",
                [FieldIssue(("amount",), f"must be between 0 and {MAX_AMOUNT}")],
            )
        if self.currency not in CURRENCY_EXPONENTS:
            raise InvalidInput(
                f"unknown currency {self.currency!r}",
                [FieldIssue(("currency",), "must be an ISO 4217 code such as EUR")],
            )

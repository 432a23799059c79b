"""问卷: a consultation's questionnaire, its ordered questions, and each household's answers.

One questionnaire per consultation. A household has at most one response (a unique
constraint), answered online by the household itself or entered from its paper sheet by
staff. Choices are stored as their position in the question's list, which is why the choices
are fixed once any household has answered.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consult.consultations.models import Consultation, Opinion
from consult.core.models import TimestampMixin, UTCDateTime
from consult.extensions import Model
from consult.registry.models import Household


class QuestionKind(StrEnum):
    SINGLE = "single"      # one choice
    MULTIPLE = "multiple"  # any number of choices
    RATING = "rating"      # 1 to 5
    TEXT = "text"          # free text


QUESTION_KIND_LABELS = {
    QuestionKind.SINGLE: _l("Single choice"),
    QuestionKind.MULTIPLE: _l("Multiple choice"),
    QuestionKind.RATING: _l("Rating from 1 to 5"),
    QuestionKind.TEXT: _l("Free text"),
}


class ResponseChannel(StrEnum):
    ONLINE = "online"  # by the household itself
    PAPER = "paper"    # from its paper sheet, entered by staff


RESPONSE_CHANNEL_LABELS = {
    ResponseChannel.ONLINE: _l("Online"),
    ResponseChannel.PAPER: _l("Paper, entered by staff"),
}

_KINDS = ", ".join(f"'{k.value}'" for k in QuestionKind)


class Questionnaire(TimestampMixin, Model):
    """A consultation's questionnaire; households answer it once it is published."""

    __tablename__ = "questionnaire"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    intro: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    consultation: Mapped[Consultation] = relationship()
    questions: Mapped[list[Question]] = relationship(
        back_populates="questionnaire", order_by="Question.position")

    @property
    def scope_compound_id(self) -> int:
        return self.consultation.compound_id


class Question(Model):
    """One question; ``choices_json`` is a JSON list of the choices' texts (choice kinds)."""

    __tablename__ = "questionnaire_question"
    __table_args__ = (CheckConstraint(f"kind IN ({_KINDS})", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaire.id"), index=True)
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(String(500))
    required: Mapped[bool] = mapped_column(default=False)
    choices_json: Mapped[str] = mapped_column(Text, default="[]")

    questionnaire: Mapped[Questionnaire] = relationship(back_populates="questions")

    @property
    def scope_compound_id(self) -> int:
        return self.questionnaire.scope_compound_id


class QuestionnaireResponse(TimestampMixin, Model):
    """A household's answers: one per household and questionnaire."""

    __tablename__ = "questionnaire_response"
    __table_args__ = (
        UniqueConstraint("questionnaire_id", "household_id"),
        CheckConstraint("channel IN ('online', 'paper')", name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaire.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    # Who saved the answers last: the household's own account, or the staff member who
    # typed in its paper sheet.
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"),
                                                      default=None)

    questionnaire: Mapped[Questionnaire] = relationship()
    household: Mapped[Household] = relationship()
    answers: Mapped[list[Answer]] = relationship(back_populates="response",
                                                 cascade="all, delete-orphan")

    @property
    def scope_compound_id(self) -> int:
        return self.questionnaire.scope_compound_id

    @property
    def scope_household_id(self) -> int:
        return self.household_id


class Answer(Model):
    """One question's answer: a choice's position, a JSON list of positions, a rating 1–5
    or a text, as ``value``. A free text the committee took up links to its opinion."""

    __tablename__ = "questionnaire_answer"
    __table_args__ = (UniqueConstraint("response_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("questionnaire_response.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questionnaire_question.id"),
                                             index=True)
    value: Mapped[str] = mapped_column(Text)
    opinion_id: Mapped[int | None] = mapped_column(ForeignKey("opinion.id"), unique=True,
                                                   default=None)

    response: Mapped[QuestionnaireResponse] = relationship(back_populates="answers")
    question: Mapped[Question] = relationship()
    opinion: Mapped[Opinion | None] = relationship()

    @property
    def scope_compound_id(self) -> int:
        return self.question.scope_compound_id

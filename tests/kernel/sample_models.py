"""A tiny model used to test the kernel's migration runner."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Widget(Base):
    __tablename__ = "widgets"
    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)

"""What perfci knows about particular services beyond their [tool.perfci] configuration."""

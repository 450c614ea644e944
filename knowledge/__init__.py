"""The knowledge base: brand voice guides and FAQs in a chromadb store."""

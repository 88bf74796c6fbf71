from fake_partner.faces.base import Face


class MetaFace(Face):
    name = "meta"
